"""Progressive GAN (Karras et al. 2018) with the conventions of NVIDIA's `networks.py` (G_paper, D_paper).

Those conventions are kept so NVIDIA's pretrained CelebA-HQ generator converts into this module unchanged:
- equalized learning rate: weights are stored with unit variance and scaled at run time by gain / sqrt(fan_in)
  (gain sqrt(2); sqrt(2)/4 for the generator's 4x4 dense layer; 1 for ToRGB and the discriminator's output);
  biases are added after the scaling and are not scaled;
- pixel norm on the input latent and after every generator convolution; leaky ReLU 0.2; nearest x2 up-sampling,
  2x2 average-pool down-sampling; features per stage min(fmap_base / 2^stage, fmap_max); linear output;
- `lod` ("level of detail", a buffer): how many doublings below `resolution` the network currently renders,
  fractional while a new resolution fades in. NVIDIA's finished networks have lod 0.

Unlike NVIDIA's training graph, which always upscales to the final size, `forward` renders at the grown size, so a
network in training draws 16x16 faces, then 32x32 ones, and so on.

The latent is pixel-normalised onto a sphere, so scaling it does nothing: `truncation_psi` has no effect here.

Where NVIDIA's (non-fused) G_paper variables land, for a converter (TF layout on the left):
    4x4/Dense/weight [z, nf*16] -> dense.weight, transposed     4x4/Dense/bias -> dense.bias
    4x4/Conv/weight [3, 3, in, out] -> conv.weight, transposed to [out, in, 3, 3]
    RxR/Conv0, RxR/Conv1 -> blocks[log2(R) - 3].conv0, .conv1    ToRGB_lod{L} -> to_rgb[num_levels - 1 - L]
    lod -> lod
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from facegen.models.architecture import (
    Architecture,
    Training,
    TrainingSettings,
    is_whole_number,
    require_whole_numbers_above_zero,
)

PIXEL_NORM_EPSILON = 1e-8
MINIBATCH_STDDEV_GROUP = 4


@dataclass(frozen=True)
class ProGANConfig:
    z_dim: int = 512
    resolution: int = 256  # the final resolution, where growing stops (NVIDIA's CelebA-HQ network: 1024)
    fmap_base: int = 8192
    fmap_max: int = 512
    image_channels: int = 3
    normalize_latents: bool = True

    def __post_init__(self) -> None:
        if self.resolution < 4 or self.resolution & (self.resolution - 1):
            raise ValueError(f"ProGAN resolution must be a power of two, at least 4, not {self.resolution}")

    @property
    def num_levels(self) -> int:
        """Resolutions from 4x4 to `resolution`: level 0 is 4x4."""
        return int(math.log2(self.resolution)) - 1

    def features(self, stage: int) -> int:
        return min(int(self.fmap_base / 2.0**stage), self.fmap_max)

    def level_features(self, level: int) -> int:
        """Feature maps of the generator block at 4 * 2^level pixels: nf(log2(R) - 1) in NVIDIA's notation."""
        return self.features(level + 1)


def level_resolution(level: int) -> int:
    return 4 * 2**level


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + PIXEL_NORM_EPSILON)


def upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def downsample(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 2)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class EqualizedConv2d(nn.Module):
    """Conv with 'same' padding whose weight is scaled by gain / sqrt(fan_in) at run time."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = math.sqrt(2)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_scale = gain / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.weight_scale, self.bias, padding=self.weight.shape[-1] // 2)


class EqualizedLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.weight_scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.weight_scale, self.bias)


class LatentToFeatures(nn.Module):
    """NVIDIA's 4x4/Dense: latent -> [N, C, 4, 4], the bias (one per channel) added after the reshape."""

    def __init__(self, z_dim: int, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels * 16, z_dim))
        self.bias = nn.Parameter(torch.zeros(channels))
        # sqrt(2)/4 "to match the original Theano implementation" (NVIDIA networks.py)
        self.weight_scale = math.sqrt(2) / 4 / math.sqrt(z_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.linear(z, self.weight * self.weight_scale).view(len(z), -1, 4, 4)
        return x + self.bias[None, :, None, None]


class Growing(nn.Module):
    """Holds the growth stage as NVIDIA's `lod` buffer, mirrored in Python so forward needs no device sync."""

    def __init__(self, num_levels: int) -> None:
        super().__init__()
        self.num_levels = num_levels
        self.register_buffer("lod", torch.zeros(()))
        self._lod = 0.0
        self.register_load_state_dict_post_hook(lambda module, _keys: module._read_lod_buffer())

    def _read_lod_buffer(self) -> None:
        self._lod = float(self.lod)

    def set_growth(self, resolution: int, alpha: float = 1.0) -> None:
        """Render at `resolution`, blending it in with weight `alpha` over the previous resolution's output."""
        level = int(math.log2(resolution)) - 2
        if level < 0 or level >= self.num_levels or level_resolution(level) != resolution:
            raise ValueError(f"resolution {resolution} is not one of this network's levels")
        if not 0.0 < alpha <= 1.0 or (level == 0 and alpha != 1.0):
            raise ValueError(f"alpha must be in (0, 1] (exactly 1 at 4x4), not {alpha}")
        self._lod = (self.num_levels - 1 - level) + (1.0 - alpha)
        self.lod.fill_(self._lod)

    @property
    def current_level(self) -> int:
        return self.num_levels - 1 - math.floor(self._lod)

    @property
    def current_resolution(self) -> int:
        return level_resolution(self.current_level)

    @property
    def alpha(self) -> float:
        return 1.0 - (self._lod - math.floor(self._lod))


class ProGANGeneratorBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, out_channels, 3)
        self.conv1 = EqualizedConv2d(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(lrelu(self.conv0(upsample(x))))
        return pixel_norm(lrelu(self.conv1(x)))


class ProGANGenerator(Growing):
    """z [N, z_dim] -> linear image [N, C, R, R] at the current growth resolution R."""

    def __init__(self, config: ProGANConfig) -> None:
        super().__init__(config.num_levels)
        self.config = config
        self.dense = LatentToFeatures(config.z_dim, config.level_features(0))
        self.conv = EqualizedConv2d(config.level_features(0), config.level_features(0), 3)
        self.blocks = nn.ModuleList(
            ProGANGeneratorBlock(config.level_features(level - 1), config.level_features(level))
            for level in range(1, config.num_levels)
        )
        self.to_rgb = nn.ModuleList(
            EqualizedConv2d(config.level_features(level), config.image_channels, 1, gain=1.0)
            for level in range(config.num_levels)
        )

    def forward(
        self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0, noise_mode: str = "const"
    ) -> torch.Tensor:
        x = pixel_norm(z) if self.config.normalize_latents else z
        x = pixel_norm(lrelu(self.dense(x)))
        x = pixel_norm(lrelu(self.conv(x)))
        level, alpha = self.current_level, self.alpha
        if level == 0:
            return self.to_rgb[0](x)
        for block in self.blocks[: level - 1]:
            x = block(x)
        previous_rgb = self.to_rgb[level - 1](x) if alpha < 1.0 else None
        image = self.to_rgb[level](self.blocks[level - 1](x))
        if previous_rgb is not None:
            image = torch.lerp(upsample(previous_rgb), image, alpha)
        return image


class ProGANDiscriminator(Growing):
    """image [N, C, R, R] at the current growth resolution -> unbounded score [N] (WGAN critic)."""

    def __init__(self, config: ProGANConfig) -> None:
        super().__init__(config.num_levels)
        self.config = config
        # the block at level L maps nf(L+1) features down to nf(L), as NVIDIA's D_paper mirrors G_paper
        self.from_rgb = nn.ModuleList(
            EqualizedConv2d(config.image_channels, config.level_features(level), 1) for level in range(config.num_levels)
        )
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                {
                    "conv0": EqualizedConv2d(config.level_features(level), config.level_features(level), 3),
                    "conv1": EqualizedConv2d(config.level_features(level), config.level_features(level - 1), 3),
                }
            )
            for level in range(1, config.num_levels)
        )
        top = config.level_features(0)
        self.final_conv = EqualizedConv2d(top + 1, top, 3)  # +1: the minibatch standard deviation plane
        self.final_dense = EqualizedLinear(top * 16, config.features(0))
        self.output = EqualizedLinear(config.features(0), 1, gain=1.0)

    def _block(self, level: int, x: torch.Tensor) -> torch.Tensor:
        block = self.blocks[level - 1]
        return downsample(lrelu(block["conv1"](lrelu(block["conv0"](x)))))

    def forward(self, images: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        level, alpha = self.current_level, self.alpha
        x = lrelu(self.from_rgb[level](images))
        if level > 0:
            x = self._block(level, x)
            if alpha < 1.0:
                x = torch.lerp(lrelu(self.from_rgb[level - 1](downsample(images))), x, alpha)
            for lower in range(level - 1, 0, -1):
                x = self._block(lower, x)
        x = minibatch_stddev(x, MINIBATCH_STDDEV_GROUP)
        x = lrelu(self.final_conv(x))
        x = lrelu(self.final_dense(x.flatten(1)))
        return self.output(x).flatten()


def minibatch_stddev(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """Append one plane: the feature standard deviation across each group of samples, averaged (NVIDIA D_paper).

    Sample i belongs to the group {i mod M + k*M}, M = N / group, as NVIDIA's reshape to [group, M, ...] makes it.
    """
    batch = len(x)
    group = max(size for size in range(1, min(group_size, batch) + 1) if batch % size == 0)
    grouped = x.view(group, -1, *x.shape[1:])
    deviation = (grouped - grouped.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # [M, C, H, W]
    per_group = deviation.mean(dim=(1, 2, 3))  # [M]
    plane = per_group.repeat(group)[:, None, None, None].expand(-1, 1, *x.shape[2:])
    return torch.cat([x, plane.to(x.dtype)], dim=1)


TRAINING_RESOLUTIONS = tuple(2**power for power in range(2, 9))  # 4 .. 256, the cap the app offers
DEFAULT_START_RESOLUTION = 16


@dataclass(frozen=True, kw_only=True)
class ProGANTraining(TrainingSettings):
    """Karras et al. 2018's settings, as NVIDIA's config.py sets them."""

    resolution: int = 256  # the final resolution, where growing stops
    z_dim: int = 512
    fmap_base: int = 8192  # features per stage are min(fmap_base / 2^stage, fmap_max)
    fmap_max: int = 512
    start_resolution: int | None = None  # where growing starts; None: 16, or `resolution` when that is smaller
    phase_steps: int | None = None  # steps per fade-in and per stable phase; None splits the run's steps evenly
    lr: float = 1e-3
    beta1: float = 0.0
    beta2: float = 0.99
    n_critic: int = 1  # critic updates per generator update
    gp_weight: float = 10.0  # WGAN-GP lambda
    drift_weight: float = 0.001  # eps_drift
    ema_decay: float = 0.999

    def __post_init__(self) -> None:
        if self.start_resolution is None and is_whole_number(self.resolution):
            # written out, so the run's config.json records where growing started
            object.__setattr__(self, "start_resolution", min(DEFAULT_START_RESOLUTION, self.resolution))

    def check(self) -> None:
        super().check()
        require_whole_numbers_above_zero(self, "n_critic", "fmap_base", "fmap_max")
        allowed = ", ".join(map(str, TRAINING_RESOLUTIONS))
        if self.start_resolution not in TRAINING_RESOLUTIONS or self.start_resolution > self.resolution:
            raise ValueError(
                f"ProGAN's start_resolution must be one of {allowed} and at most resolution ({self.resolution}), "
                f"not {self.start_resolution!r}."
            )
        if self.phase_steps is not None and not (is_whole_number(self.phase_steps) and self.phase_steps > 0):
            raise ValueError(
                f"phase_steps must be a whole number above 0 (or unset to split the steps evenly), not {self.phase_steps!r}."
            )


ARCHITECTURE = Architecture(
    name="progan",
    title="ProGAN (Karras et al. 2018): grows from 16 px up to 256 px",
    config_class=ProGANConfig,
    generator_class=ProGANGenerator,
    training=Training(ProGANTraining, "facegen.train.architectures:progan_trainer", TRAINING_RESOLUTIONS),
)
