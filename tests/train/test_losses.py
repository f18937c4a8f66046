"""Losses against hand computations."""

import math

import pytest
import torch
from torch import nn

from facegen.train.losses import (
    discriminator_bce_loss,
    drift_penalty,
    generator_bce_loss,
    gradient_penalty,
    wasserstein_critic_loss,
)


def test_gradient_penalty_of_a_linear_critic_is_the_weight_norm_gap():
    """D(x) = <w, x> has gradient w everywhere, so the penalty is (||w|| - 1)^2 whatever the images."""
    weight = torch.tensor([[[[3.0, 0.0], [0.0, 4.0]]]])  # ||w|| = 5
    critic = lambda images: (images * weight).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    penalty = gradient_penalty(critic, real, fake, torch.rand(6))
    assert penalty.item() == pytest.approx((5 - 1) ** 2)


def test_gradient_penalty_of_a_quadratic_critic_matches_the_hand_computed_mix():
    """D(x) = sum(x^2): grad = 2 x_hat at x_hat = w real + (1 - w) fake, per sample."""
    real = torch.tensor([[1.0, 0.0], [0.0, 2.0]]).view(2, 1, 1, 2)
    fake = torch.tensor([[0.0, 1.0], [2.0, 2.0]]).view(2, 1, 1, 2)
    mix = torch.tensor([0.25, 0.5])
    critic = lambda images: images.square().flatten(1).sum(1)  # noqa: E731
    # sample 0: x_hat = (0.25, 0.75), |2 x_hat| = 2 * sqrt(0.625); sample 1: x_hat = (1, 2), |2 x_hat| = 2 * sqrt(5)
    expected = ((2 * math.sqrt(0.625) - 1) ** 2 + (2 * math.sqrt(5) - 1) ** 2) / 2
    assert gradient_penalty(critic, real, fake, mix).item() == pytest.approx(expected, rel=1e-6)


def test_gradient_penalty_reaches_the_critic_weights():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(4, 1))
    penalty = gradient_penalty(lambda images: critic(images).flatten(), torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2), torch.rand(3))
    penalty.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    weight = critic[1].weight.detach()
    expected = 2 * (weight.norm() - 1) * weight / weight.norm()
    assert torch.allclose(critic[1].weight.grad, expected, atol=1e-6)


def test_bce_losses_equal_the_tutorials_sigmoid_and_bceloss():
    real_logits, fake_logits = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.2, 1.0])
    bce = nn.BCELoss()
    tutorial_d = bce(torch.sigmoid(real_logits), torch.ones(3)) + bce(torch.sigmoid(fake_logits), torch.zeros(3))
    assert discriminator_bce_loss(real_logits, fake_logits).item() == pytest.approx(tutorial_d.item(), rel=1e-6)
    tutorial_g = bce(torch.sigmoid(fake_logits), torch.ones(3))
    assert generator_bce_loss(fake_logits).item() == pytest.approx(tutorial_g.item(), rel=1e-6)


def test_wasserstein_and_drift_terms():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert wasserstein_critic_loss(real, fake).item() == pytest.approx(-0.5 - 2.0)
    assert drift_penalty(real).item() == pytest.approx((1 + 9) / 2)
