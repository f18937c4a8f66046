"""DCGAN (Radford et al. 2016) as the PyTorch DCGAN tutorial builds it, at 64x64 or 32x32.

Module names match the tutorial (`main.0.weight`, ...) so its checkpoints, including the pretrained
`gan-face-generate` weights, load without renaming.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class DCGANConfig:
    z_dim: int = 100
    generator_channels: int = 64  # ngf: feature maps of the last hidden generator layer
    discriminator_channels: int = 64  # ndf
    resolution: int = 64  # 64 (tutorial) or 32 (one up-sampling stage fewer)
    image_channels: int = 3

    def __post_init__(self) -> None:
        if self.resolution not in (32, 64):
            raise ValueError(f"DCGAN supports resolution 32 or 64, not {self.resolution}")

    @property
    def num_upsamplings(self) -> int:
        return int(math.log2(self.resolution)) - 2  # 4x4 -> resolution


class DCGANGenerator(nn.Module):
    """z [N, z_dim] -> tanh image [N, C, R, R]. 'Truncation' scales z towards its mean, the origin."""

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.generator_channels * 2**i for i in reversed(range(config.num_upsamplings))]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(config.z_dim, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for in_width, out_width in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(in_width, out_width, 4, 2, 1, bias=False), nn.BatchNorm2d(out_width), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], config.image_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(
        self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0, noise_mode: str = "const"
    ) -> torch.Tensor:
        return self.main((z * truncation_psi)[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """image [N, C, R, R] -> logit [N]. The tutorial ends in a sigmoid; we keep logits for a stable BCE."""

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        widths = [config.discriminator_channels * 2**i for i in range(config.num_upsamplings)]
        layers: list[nn.Module] = [nn.Conv2d(config.image_channels, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for in_width, out_width in zip(widths, widths[1:]):
            layers += [nn.Conv2d(in_width, out_width, 4, 2, 1, bias=False), nn.BatchNorm2d(out_width), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(images).flatten()


def init_dcgan_weights(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: conv weights N(0, 0.02), batch-norm scales N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
