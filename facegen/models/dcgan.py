"""DCGAN (Radford et al. 2016) as the PyTorch DCGAN tutorial builds it, at 64x64 or 32x32.

Module names match the tutorial (`main.0.weight`, ...) so its checkpoints, including the pretrained
`gan-face-generate` weights, load without renaming. The layer stacks are built by two functions that the
attribute-conditioned DCGAN (`cdcgan.py`) and the WGAN-GP critic (`wgan_gp.py`) share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from facegen.models.architecture import Architecture, Training, TrainingSettings, require_whole_numbers_above_zero

RESOLUTIONS = (32, 64)


@dataclass(frozen=True)
class DCGANConfig:
    z_dim: int = 100
    generator_channels: int = 64  # ngf: feature maps of the last hidden generator layer
    discriminator_channels: int = 64  # ndf
    resolution: int = 64  # 64 (tutorial) or 32 (one up-sampling stage fewer)
    image_channels: int = 3

    def __post_init__(self) -> None:
        check_resolution(self.resolution)


def check_resolution(resolution: int) -> None:
    if resolution not in RESOLUTIONS:
        raise ValueError(f"DCGAN supports resolution 32 or 64, not {resolution}")


def num_upsamplings(resolution: int) -> int:
    return int(math.log2(resolution)) - 2  # 4x4 -> resolution


def generator_layers(input_dim: int, channels: int, resolution: int, image_channels: int) -> nn.Sequential:
    """input [N, input_dim, 1, 1] -> tanh image: a 4x4 transposed conv, then x2 transposed convs, halving widths."""
    widths = [channels * 2**i for i in reversed(range(num_upsamplings(resolution)))]
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(input_dim, widths[0], 4, 1, 0, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(True),
    ]
    for in_width, out_width in zip(widths, widths[1:]):
        layers += [nn.ConvTranspose2d(in_width, out_width, 4, 2, 1, bias=False), nn.BatchNorm2d(out_width), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(widths[-1], image_channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator_layers(input_channels: int, channels: int, resolution: int, batch_norm: bool = True) -> nn.Sequential:
    """image [N, input_channels, R, R] -> one logit map [N, 1, 1, 1]: stride-2 convs doubling widths."""
    widths = [channels * 2**i for i in range(num_upsamplings(resolution))]
    layers: list[nn.Module] = [nn.Conv2d(input_channels, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    for in_width, out_width in zip(widths, widths[1:]):
        layers.append(nn.Conv2d(in_width, out_width, 4, 2, 1, bias=False))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_width))
        layers.append(nn.LeakyReLU(0.2, True))
    layers += [nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False)]
    return nn.Sequential(*layers)


class DCGANGenerator(nn.Module):
    """z [N, z_dim] -> tanh image [N, C, R, R]. 'Truncation' scales z towards its mean, the origin."""

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        self.config = config
        self.main = generator_layers(config.z_dim, config.generator_channels, config.resolution, config.image_channels)

    def forward(
        self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0, noise_mode: str = "const"
    ) -> torch.Tensor:
        return self.main((z * truncation_psi)[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """image [N, C, R, R] -> logit [N]. The tutorial ends in a sigmoid; we keep logits for a stable BCE."""

    def __init__(self, config: DCGANConfig, batch_norm: bool = True) -> None:
        super().__init__()
        self.main = discriminator_layers(config.image_channels, config.discriminator_channels, config.resolution, batch_norm)

    def forward(self, images: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(images).flatten()


def init_dcgan_weights(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: conv weights N(0, 0.02), batch-norm scales N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


@dataclass(frozen=True, kw_only=True)
class DCGANTraining(TrainingSettings):
    """Radford et al.'s settings, as the PyTorch DCGAN tutorial uses them."""

    resolution: int = 64
    z_dim: int = 100
    generator_channels: int = 64  # ngf
    discriminator_channels: int = 64  # ndf
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def check(self) -> None:
        super().check()
        require_whole_numbers_above_zero(self, "generator_channels", "discriminator_channels")


ARCHITECTURE = Architecture(
    name="dcgan",
    title="DCGAN (Radford et al. 2016), 32 or 64 px",
    config_class=DCGANConfig,
    generator_class=DCGANGenerator,
    training=Training(DCGANTraining, "facegen.train.architectures:dcgan_trainer", RESOLUTIONS),
)
