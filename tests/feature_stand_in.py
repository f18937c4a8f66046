"""A stand-in for the TF-FID Inception: InceptionFeatures' calling convention, no download, a fraction of the time.

Tests of what FID/KID code does with features (caching, progress, the CLI, the Compare page, agreement with
torchmetrics) use it. Only the tests marked `needs_package_index` in tests/test_metrics.py run the real network.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facegen.metrics import FEATURE_DIM, InceptionFeatures

POOLED_SIZE = 8


class PooledPixelFeatures(nn.Module):
    """[N, 3, 299, 299] pixels in [-1, 1] -> [N, 2048]: 8x8 average-pooled colours through a fixed random layer.

    Pictures that differ in layout or colour get different features, which is all a stand-in must show.
    """

    def __init__(self) -> None:
        super().__init__()
        weights = torch.randn(3 * POOLED_SIZE**2, FEATURE_DIM, generator=torch.Generator().manual_seed(0))
        self.register_buffer("projection", weights / POOLED_SIZE)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.tanh(F.adaptive_avg_pool2d(images, POOLED_SIZE).flatten(1) @ self.projection)


STAND_IN_NAME = "stand-in features (8x8 pooled pixels, random projection)"


def stand_in_features(batch_size: int = 32) -> InceptionFeatures:
    return InceptionFeatures(PooledPixelFeatures(), STAND_IN_NAME, batch_size=batch_size)


def use_stand_in_features(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `InceptionFeatures.load()`, which the CLI and the pages call, return the stand-in."""
    monkeypatch.setattr(
        InceptionFeatures, "load", classmethod(lambda cls, device="cpu", batch_size=32: stand_in_features(batch_size))
    )
