"""What one training step optimises: the adversarial objective and how a step applies it.

An objective turns real batches into one generator update through the trainer it is given (which owns networks,
optimizers, mixed precision and conditioning). All randomness comes from the step's `noise` generator, in a fixed
order, so a step computes the same numbers after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

from facegen.train.losses import (
    discriminator_bce_loss,
    drift_penalty,
    generator_bce_loss,
    gradient_penalty,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)

if TYPE_CHECKING:
    from facegen.train.gans import Batch, GANTrainer


class Objective(Protocol):
    @property
    def batches_per_step(self) -> int:
        """Real batches one step (one generator update) consumes."""

    def step(self, trainer: GANTrainer, batches: list[Batch], noise: torch.Generator) -> dict[str, torch.Tensor]:
        """Update discriminator and generator once; returns the step's metrics as device tensors."""


@dataclass(frozen=True)
class NonSaturatingGAN:
    """Goodfellow et al.'s GAN with the non-saturating generator loss, stepped as the DCGAN tutorial does:
    D on real, D on fake, D update, then G through D."""

    @property
    def batches_per_step(self) -> int:
        return 1

    def step(self, trainer: GANTrainer, batches: list[Batch], noise: torch.Generator) -> dict[str, torch.Tensor]:
        ((reals, batch_labels),) = batches
        # generated faces get the labels of real ones, so their combinations follow the data's
        labels = trainer.conditioning.labels(batch_labels)
        reals = trainer.real_images(reals)
        with trainer.autocast():
            fakes = trainer.G(trainer.latents(len(reals), noise), labels)
            # real and fake go through D separately, as in the tutorial: batch norm sees each batch on its own
            real_logits = trainer.D(reals, labels)
            fake_logits = trainer.D(fakes.detach(), labels)
            loss_d = discriminator_bce_loss(real_logits.float(), fake_logits.float())
        trainer.optimize("discriminator", loss_d)
        with trainer.autocast(), trainer.frozen_discriminator():
            loss_g = generator_bce_loss(trainer.discriminator(fakes, labels).float())
        trainer.optimize("generator", loss_g)
        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach().float()).mean(),
        }


@dataclass(frozen=True)
class WassersteinGP:
    """Gulrajani et al.'s algorithm 1: n_critic critic updates with the gradient penalty per generator update,
    each on a fresh batch; with `drift_weight`, ProGAN's drift term (Karras et al. 2018, appendix A.1) too."""

    gp_weight: float
    n_critic: int = 1
    drift_weight: float = 0.0

    @property
    def batches_per_step(self) -> int:
        return self.n_critic

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
        loss = wasserstein_critic_loss(real_scores, fake_scores) + self.gp_weight * penalty
        if self.drift_weight:
            loss = loss + self.drift_weight * drift_penalty(real_scores)
        return loss

    def step(self, trainer: GANTrainer, batches: list[Batch], noise: torch.Generator) -> dict[str, torch.Tensor]:
        totals: dict[str, torch.Tensor] = {}
        for reals, batch_labels in batches:
            labels = trainer.conditioning.labels(batch_labels)
            reals = trainer.real_images(reals)
            with torch.no_grad(), trainer.autocast():
                fakes = trainer.G(trainer.latents(len(reals), noise), labels)
            with trainer.autocast():
                real_scores = trainer.D(reals, labels).float()
                fake_scores = trainer.D(fakes, labels).float()
                mix = torch.rand(len(reals), generator=noise, device=trainer.device)
                penalty = gradient_penalty(lambda images: trainer.D(images, labels), reals, fakes, mix)
                loss_d = self.critic_loss(real_scores, fake_scores, penalty)
            trainer.optimize("discriminator", loss_d)
            for name, value in (("loss_d", loss_d), ("gradient_penalty", penalty), ("d_real", real_scores.mean()), ("d_fake", fake_scores.mean())):
                totals[name] = totals.get(name, 0) + value.detach() / len(batches)
        with trainer.autocast(), trainer.frozen_discriminator():
            fakes = trainer.G(trainer.latents(len(batches[-1][0]), noise), labels)
            loss_g = wasserstein_generator_loss(trainer.discriminator(fakes, labels).float())
        trainer.optimize("generator", loss_g)
        return dict(totals, loss_g=loss_g.detach())
