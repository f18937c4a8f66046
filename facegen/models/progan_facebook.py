"""Facebook's PGAN generator (pytorch_GAN_zoo): NVIDIA's ProGAN with a per-position bias in the 4x4 layer.

pytorch_GAN_zoo follows the ProGAN paper with one layout difference that matters for its weights: the layer that
turns the latent into the 4x4 feature map ("formatLayer") is a linear layer with one bias per output, that is per
channel *and* position, where NVIDIA's adds one bias per channel after the reshape. Everything after it (pixel
norm, leaky ReLU 0.2, nearest x2 up-sampling, two 3x3 convolutions per resolution, 1x1 ToRGB, lod blending) is
`facegen.models.progan` unchanged. Its other differences (equalized-lr scaling of the bias, He gain for every
layer) are conventions of how weights are stored, folded into these modules' weights by the format reader.

Networks trained with the DCGAN or MSE losses end in tanh; the WGAN-GP ones (the default) are linear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from facegen.models.architecture import Architecture
from facegen.models.progan import ProGANConfig, ProGANGenerator


@dataclass(frozen=True)
class FacebookProGANConfig(ProGANConfig):
    tanh_output: bool = False


class PerPositionLatentToFeatures(nn.Module):
    """latent -> [N, C, 4, 4] by an equalized linear layer with one bias per output value."""

    def __init__(self, z_dim: int, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels * 16, z_dim))
        self.bias = nn.Parameter(torch.zeros(channels, 4, 4))
        self.weight_scale = math.sqrt(2) / math.sqrt(z_dim)  # the He gain pytorch_GAN_zoo gives every layer

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.linear(z, self.weight * self.weight_scale).view(len(z), -1, 4, 4) + self.bias


class FacebookProGANGenerator(ProGANGenerator):
    """z [N, z_dim] -> image [N, C, R, R] at the current growth resolution R."""

    def __init__(self, config: FacebookProGANConfig) -> None:
        super().__init__(config)
        self.dense = PerPositionLatentToFeatures(config.z_dim, config.level_features(0))

    def forward(
        self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0, noise_mode: str = "const"
    ) -> torch.Tensor:
        image = super().forward(z, c, truncation_psi, noise_mode)
        return torch.tanh(image) if self.config.tanh_output else image


ARCHITECTURE = Architecture(
    name="progan-facebook",
    title="ProGAN as Facebook's pytorch_GAN_zoo stores it: its pretrained PGAN networks",
    config_class=FacebookProGANConfig,
    generator_class=FacebookProGANGenerator,
)
