"""DCGAN conditioned on binary attributes (CelebA's 40), in the style of Mirza & Osindero's conditional GAN.

The generator reads noise and the attribute vector side by side; the discriminator sees the attributes as
constant extra image planes, so it judges whether a face matches them. Attributes are 0 (absent) or 1 (present):
the Sample page's toggles switch single dimensions on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from facegen.models.architecture import Architecture, Training
from facegen.models.dcgan import RESOLUTIONS, DCGANTraining, check_resolution, discriminator_layers, generator_layers

CELEBA_ATTRIBUTE_COUNT = 40


@dataclass(frozen=True)
class CDCGANConfig:
    z_dim: int = 100
    c_dim: int = CELEBA_ATTRIBUTE_COUNT
    generator_channels: int = 64
    discriminator_channels: int = 64
    resolution: int = 64
    image_channels: int = 3

    def __post_init__(self) -> None:
        check_resolution(self.resolution)


class CDCGANGenerator(nn.Module):
    """(z [N, z_dim], attributes [N, c_dim]) -> tanh image [N, C, R, R]."""

    def __init__(self, config: CDCGANConfig) -> None:
        super().__init__()
        self.config = config
        self.main = generator_layers(
            config.z_dim + config.c_dim, config.generator_channels, config.resolution, config.image_channels
        )

    def forward(
        self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0, noise_mode: str = "const"
    ) -> torch.Tensor:
        if c is None:
            c = z.new_zeros(len(z), self.config.c_dim)
        return self.main(torch.cat([z * truncation_psi, c.to(z.dtype)], dim=1)[:, :, None, None])


class CDCGANDiscriminator(nn.Module):
    """(image [N, C, R, R], attributes [N, c_dim]) -> logit [N]."""

    def __init__(self, config: CDCGANConfig) -> None:
        super().__init__()
        self.main = discriminator_layers(
            config.image_channels + config.c_dim, config.discriminator_channels, config.resolution
        )

    def forward(self, images: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        planes = c.to(images.dtype)[:, :, None, None].expand(-1, -1, *images.shape[2:])
        return self.main(torch.cat([images, planes], dim=1)).flatten()


ARCHITECTURE = Architecture(
    name="cdcgan",
    title="Attribute-conditioned DCGAN: needs labelled faces (CelebA's 40 attributes)",
    config_class=CDCGANConfig,
    generator_class=CDCGANGenerator,
    training=Training(DCGANTraining, "facegen.train.architectures:cdcgan_trainer", RESOLUTIONS),
    is_conditional=True,
)
