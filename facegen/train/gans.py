"""One training step per architecture: DCGAN (and its attribute-conditioned twin), WGAN-GP, ProGAN.

A trainer owns the networks and optimizers and turns real batches into one generator update; it does no file
I/O (the loop and `checkpoints.py` do). All randomness of a step comes from the `noise` generator the loop passes
in, seeded from (seed, step, rank), so a step computes the same numbers after a restart.

Speed choices, measured in `bench/train.py`: the discriminator's weights are frozen while the generator's loss is
back-propagated through it (the tutorial computes and then discards those gradients); channels-last (NHWC) layout,
which oneDNN's CPU convolutions and cuDNN both run faster; bfloat16 autocast where the hardware has it (the weights,
optimizer state and losses stay float32); gradients are dropped rather than zeroed (`set_to_none`); losses stay on
the device until the loop logs them (no per-step sync).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facegen import device as devices
from facegen.generator import Generator, ModelInfo
from facegen.train import distributed
from facegen.train.config import ConfigError, TrainConfig
from facegen.train.losses import (
    discriminator_bce_loss,
    drift_penalty,
    generator_bce_loss,
    gradient_penalty,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)

# An EMA with decay 0.999 would average over the untrained start for thousands of steps; this ramp makes the
# average follow the weights early on and reach the configured decay after a few hundred steps.
EMA_RAMP_OFFSET = 10

Batch = tuple[torch.Tensor, torch.Tensor | None]  # images in [-1, 1], attributes or None


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No weight gradients for `module` inside: back-propagating through it then costs only the input gradients."""
    flags = [parameter.requires_grad for parameter in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in zip(module.parameters(), flags):
            parameter.requires_grad_(flag)


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def has_native_bfloat16(device: torch.device) -> bool:
    """Mixed precision pays only where bfloat16 is computed in hardware: recent GPUs, CPUs with AVX512-BF16 or AMX.

    Elsewhere bfloat16 is emulated and slower than float32, so training stays in float32 there.
    """
    return devices.has_native_bfloat16(device)  # the run's GPU, never counting emulation


@dataclass(frozen=True)
class GeneratorSpec:
    """What `checkpoint.save_generator` needs to write a generator a Generator can be built from alone."""

    architecture: str
    config: Any
    info: dict[str, Any]


class GANTrainer:
    """Shared machinery: networks on the device, Adam optimizers, optional EMA, mixed precision, DDP wrapping."""

    grows = False

    def __init__(
        self,
        config: TrainConfig,
        device: torch.device,
        context: distributed.Distributed,
        attribute_names: tuple[str, ...] = (),
    ) -> None:
        self.config = config
        self.device = device
        self.attribute_names = attribute_names
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.autocast_dtype = torch.bfloat16 if config.amp and has_native_bfloat16(device) else None
        generator, discriminator = self.build_networks()
        self.generator = generator.to(device, memory_format=self.memory_format)
        self.discriminator = discriminator.to(device, memory_format=self.memory_format)
        self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False) if config.uses_ema else None
        betas = (config.beta1, config.beta2)
        self.optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas),
        }
        self.G = distributed.wrap(self.generator, context, device, self.grows)
        self.D = distributed.wrap(self.discriminator, context, device, self.grows)

    # -- per architecture -----------------------------------------------------------------------------------
    def build_networks(self) -> tuple[nn.Module, nn.Module]:
        raise NotImplementedError

    def generator_spec(self) -> GeneratorSpec:
        raise NotImplementedError

    def train_step(self, batches: list[Batch], noise: torch.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def prepare(self, step: int) -> dict[str, float]:
        """Set up for `step` (1-based); returns facts to log about it (ProGAN: resolution and fade-in)."""
        return {}

    # -- shared ---------------------------------------------------------------------------------------------
    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    def networks(self) -> dict[str, nn.Module]:
        named = {"generator": self.generator, "discriminator": self.discriminator}
        if self.generator_ema is not None:
            named["generator_ema"] = self.generator_ema
        return named

    def sampling_network(self) -> nn.Module:
        return self.generator_ema if self.generator_ema is not None else self.generator

    def sampling_generator(self, model_id: str) -> Generator:
        """A Generator over a copy of the network checkpoints load by default (the EMA one when kept)."""
        info = self.generator_spec().info
        model_info = ModelInfo(
            model_id=model_id,
            family=info["family"],
            z_dim=self.z_dim,
            resolution=info["resolution"],
            c_dim=info.get("c_dim", 0),
            label_names=tuple(info.get("label_names", ())),
            labels_are_attributes=info.get("labels_are_attributes", False),
        )
        return Generator(copy.deepcopy(self.sampling_network()), model_info, self.device)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def to_device(self, batch: Batch) -> Batch:
        images, labels = batch
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        return images, None if labels is None else labels.to(self.device, non_blocking=True)

    def latents(self, count: int, noise: torch.Generator) -> torch.Tensor:
        return torch.randn(count, self.z_dim, generator=noise, device=self.device)

    def optimize(self, name: str, loss: torch.Tensor) -> None:
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def update_ema(self, step: int) -> None:
        if self.generator_ema is None:
            return
        decay = min(self.config.ema_decay, (1 + step) / (EMA_RAMP_OFFSET + step))
        with torch.no_grad():
            for average, current in zip(self.generator_ema.parameters(), self.generator.parameters()):
                average.lerp_(current, 1 - decay)
            for average, current in zip(self.generator_ema.buffers(), self.generator.buffers()):
                average.copy_(current)

    def base_info(self) -> dict[str, Any]:
        return {"family": self.config.arch, "resolution": self.config.resolution}


class DCGANTrainer(GANTrainer):
    """Radford et al.'s DCGAN with the tutorial's step: D on real, D on fake, D update, then G through D."""

    def build_networks(self) -> tuple[nn.Module, nn.Module]:
        from facegen.models.dcgan import DCGANDiscriminator, DCGANGenerator, init_dcgan_weights

        config = self.dcgan_config()
        generator, discriminator = DCGANGenerator(config), DCGANDiscriminator(config)
        generator.apply(init_dcgan_weights)
        discriminator.apply(init_dcgan_weights)
        return generator, discriminator

    def dcgan_config(self):
        from facegen.models.dcgan import DCGANConfig

        config = self.config
        return DCGANConfig(config.z_dim, config.generator_channels, config.discriminator_channels, config.resolution)

    def generator_spec(self) -> GeneratorSpec:
        return GeneratorSpec("dcgan", self.dcgan_config(), self.base_info())

    def train_step(self, batches: list[Batch], noise: torch.Generator) -> dict[str, torch.Tensor]:
        (reals, labels), = batches
        # generated faces get the attributes of real ones, so their combinations follow the data's
        fake_labels = labels
        with self.autocast():
            fakes = self.G(self.latents(len(reals), noise), fake_labels)
            # real and fake go through D separately, as in the tutorial: batch norm sees each batch on its own
            real_logits = self.D(reals, labels)
            fake_logits = self.D(fakes.detach(), fake_labels)
            loss_d = discriminator_bce_loss(real_logits.float(), fake_logits.float())
        self.optimize("discriminator", loss_d)
        with self.autocast(), frozen(self.discriminator):
            loss_g = generator_bce_loss(self.discriminator(fakes, fake_labels).float())
        self.optimize("generator", loss_g)
        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach().float()).mean(),
        }


class CDCGANTrainer(DCGANTrainer):
    """DCGAN conditioned on binary attributes; the dataset must carry them (CelebA's 40)."""

    def build_networks(self) -> tuple[nn.Module, nn.Module]:
        from facegen.models.cdcgan import CDCGANDiscriminator, CDCGANGenerator
        from facegen.models.dcgan import init_dcgan_weights

        if not self.attribute_names:
            raise ConfigError(
                f"cdcgan learns from attribute labels, and {self.config.data} has none. Use a CelebA folder or zip "
                "(list_attr_celeba.txt beside img_align_celeba/), or an hf: dataset with CelebA attribute columns; "
                "or train --arch dcgan."
            )
        config = self.cdcgan_config()
        generator, discriminator = CDCGANGenerator(config), CDCGANDiscriminator(config)
        generator.apply(init_dcgan_weights)
        discriminator.apply(init_dcgan_weights)
        return generator, discriminator

    def cdcgan_config(self):
        from facegen.models.cdcgan import CDCGANConfig

        config = self.config
        return CDCGANConfig(
            config.z_dim, len(self.attribute_names), config.generator_channels, config.discriminator_channels,
            config.resolution,
        )  # fmt: skip

    def generator_spec(self) -> GeneratorSpec:
        info = dict(
            self.base_info(),
            c_dim=len(self.attribute_names),
            label_names=list(self.attribute_names),
            labels_are_attributes=True,
        )
        return GeneratorSpec("cdcgan", self.cdcgan_config(), info)


class WGANGPTrainer(DCGANTrainer):
    """Gulrajani et al.'s algorithm 1: n_critic critic updates with the gradient penalty per generator update."""

    def build_networks(self) -> tuple[nn.Module, nn.Module]:
        from facegen.models.dcgan import DCGANGenerator, init_dcgan_weights
        from facegen.models.wgan_gp import WGANGPCritic

        config = self.dcgan_config()
        generator, critic = DCGANGenerator(config), WGANGPCritic(config)
        generator.apply(init_dcgan_weights)
        critic.apply(init_dcgan_weights)
        return generator, critic

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
        return wasserstein_critic_loss(real_scores, fake_scores) + self.config.gp_weight * penalty

    def real_images(self, reals: torch.Tensor) -> torch.Tensor:
        return reals

    def train_step(self, batches: list[Batch], noise: torch.Generator) -> dict[str, torch.Tensor]:
        totals: dict[str, torch.Tensor] = {}
        for batch in batches:
            reals, _ = batch
            reals = self.real_images(reals)
            with torch.no_grad(), self.autocast():
                fakes = self.G(self.latents(len(reals), noise))
            with self.autocast():
                real_scores = self.D(reals).float()
                fake_scores = self.D(fakes).float()
                mix = torch.rand(len(reals), generator=noise, device=self.device)
                penalty = gradient_penalty(self.D, reals, fakes, mix)
                loss_d = self.critic_loss(real_scores, fake_scores, penalty)
            self.optimize("discriminator", loss_d)
            for name, value in (("loss_d", loss_d), ("gradient_penalty", penalty), ("d_real", real_scores.mean()), ("d_fake", fake_scores.mean())):
                totals[name] = totals.get(name, 0) + value.detach() / len(batches)
        with self.autocast(), frozen(self.discriminator):
            fakes = self.G(self.latents(len(batches[-1][0]), noise))
            loss_g = wasserstein_generator_loss(self.discriminator(fakes).float())
        self.optimize("generator", loss_g)
        return dict(totals, loss_g=loss_g.detach())

    def base_info(self) -> dict[str, Any]:
        return {"family": "wgan-gp", "resolution": self.config.resolution}


@dataclass(frozen=True)
class GrowthStage:
    resolution: int
    alpha: float  # weight of the newest resolution while it fades in; 1 when stable


def growth_resolutions(config: TrainConfig) -> list[int]:
    count = int(math.log2(config.resolution // config.start_resolution)) + 1
    return [config.start_resolution * 2**index for index in range(count)]


def growth_phase_steps(config: TrainConfig) -> int:
    """Steps per phase: a stable phase at the start resolution, then a fade-in and a stable phase per doubling."""
    phases = 2 * len(growth_resolutions(config)) - 1
    return config.phase_steps or max(1, config.steps // phases)


def growth_stage(config: TrainConfig, step: int) -> GrowthStage:
    """The resolution and fade-in weight ProGAN trains at in `step` (1-based)."""
    resolutions = growth_resolutions(config)
    phase_steps = growth_phase_steps(config)
    phase, position = divmod(step - 1, phase_steps)
    if phase >= 2 * len(resolutions) - 1:
        return GrowthStage(resolutions[-1], 1.0)
    index = (phase + 1) // 2
    fading = phase % 2 == 1
    return GrowthStage(resolutions[index], (position + 1) / phase_steps if fading else 1.0)


class ProGANTrainer(WGANGPTrainer):
    """Karras et al.: WGAN-GP with drift, growing from start_resolution to resolution with fade-ins, EMA generator."""

    grows = True

    def build_networks(self) -> tuple[nn.Module, nn.Module]:
        from facegen.models.progan import ProGANDiscriminator, ProGANGenerator

        config = self.progan_config()
        return ProGANGenerator(config), ProGANDiscriminator(config)

    def progan_config(self):
        from facegen.models.progan import ProGANConfig

        config = self.config
        return ProGANConfig(config.z_dim, config.resolution, config.fmap_base, config.fmap_max)

    def prepare(self, step: int) -> dict[str, float]:
        stage = growth_stage(self.config, step)
        for network in self.networks().values():
            network.set_growth(stage.resolution, stage.alpha)
        return {"resolution": stage.resolution, "alpha": stage.alpha}

    def real_images(self, reals: torch.Tensor) -> torch.Tensor:
        """Reals at the growth resolution; while it fades in, blended with their blurrier half-resolution version
        exactly as the generator blends its output (NVIDIA's process_reals)."""
        resolution, alpha = self.generator.current_resolution, self.generator.alpha
        if reals.shape[-1] != resolution:
            reals = F.avg_pool2d(reals, reals.shape[-1] // resolution)
        if alpha < 1.0:
            coarse = F.interpolate(F.avg_pool2d(reals, 2), scale_factor=2, mode="nearest")
            reals = torch.lerp(coarse, reals, alpha)
        return reals.contiguous(memory_format=self.memory_format)

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
        return super().critic_loss(real_scores, fake_scores, penalty) + self.config.drift_weight * drift_penalty(real_scores)

    def generator_spec(self) -> GeneratorSpec:
        return GeneratorSpec("progan", self.progan_config(), {"family": "progan", "resolution": self.generator.current_resolution})


TRAINERS: dict[str, type[GANTrainer]] = {
    "dcgan": DCGANTrainer,
    "cdcgan": CDCGANTrainer,
    "wgan-gp": WGANGPTrainer,
    "progan": ProGANTrainer,
}


def build_trainer(
    config: TrainConfig, device: torch.device, context: distributed.Distributed, attribute_names: tuple[str, ...] = ()
) -> GANTrainer:
    return TRAINERS[config.arch](config, device, context, attribute_names)
