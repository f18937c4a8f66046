"""GAN losses, each named after the paper that defines it.

Every loss returns a scalar tensor and never calls `.item()`, so a training step queues no device syncs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def discriminator_bce_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Goodfellow et al.'s discriminator loss, BCE(D(x), 1) + BCE(D(G(z)), 0), computed from logits.

    Equal to the DCGAN tutorial's sigmoid + BCELoss, without the log(0) that a saturated sigmoid produces.
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_bce_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss BCE(D(G(z)), 1) (Goodfellow et al. 2014, section 3)."""
    return F.softplus(-fake_logits).mean()


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Arjovsky et al.'s critic loss: the critic widens the score gap between real and generated images."""
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real_images: torch.Tensor,
    fake_images: torch.Tensor,
    mix_weights: torch.Tensor,
) -> torch.Tensor:
    """Gulrajani et al. 2017, eq. 3: mean over samples of (||grad_x D(x_hat)||_2 - 1)^2.

    x_hat = w * real + (1 - w) * fake with one weight w in [0, 1] per sample (`mix_weights`, shape [N]). The graph
    is kept (`create_graph`), so the penalty's own gradient reaches the critic's weights.
    """
    real_images = real_images.detach()
    # under mixed precision the generated images arrive in bfloat16; mix in the real images' precision
    fake_images = fake_images.detach().to(real_images.dtype)
    weights = mix_weights.view(-1, *([1] * (real_images.ndim - 1))).to(real_images.dtype)
    mixed = torch.lerp(fake_images, real_images, weights).requires_grad_(True)
    scores = critic(mixed)
    (gradients,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = gradients.float().flatten(1).norm(dim=1)
    return (norms - 1).square().mean()


def drift_penalty(real_scores: torch.Tensor) -> torch.Tensor:
    """Karras et al. 2018, appendix A.1: eps_drift * E[D(x)^2] keeps the critic's scores near zero."""
    return real_scores.float().square().mean()
