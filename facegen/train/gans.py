"""The GAN trainer, composed of an architecture's parts: its networks, its objective (`objectives.py`), its
conditioning on labels and its growth schedule (`growth.py`). Each architecture's description names the function
that builds its parts (`facegen.train.architectures` for facegen's own).

A trainer owns the networks and optimizers and turns real batches into one generator update; it does no file
I/O (the loop and `checkpoints.py` do). All randomness of a step comes from the `noise` generator the loop passes
in, seeded from (seed, step, rank), so a step computes the same numbers after a restart.

Speed choices, measured in `bench/train.py`: the discriminator's weights are frozen while the generator's loss is
back-propagated through it (the tutorial computes and then discards those gradients); channels-last (NHWC) layout,
which oneDNN's CPU convolutions and cuDNN both run faster; bfloat16 autocast where the hardware has it (the weights,
optimizer state and losses stay float32); gradients are dropped rather than zeroed (`set_to_none`); losses stay on
the device until the loop logs them (no per-step sync); real batches cross to the device as uint8 (a quarter of
float32's bytes), at the resolution the step trains at, from pinned memory on CUDA, and are converted there.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from facegen import device as devices
from facegen.data import to_unit_range
from facegen.generator import Generator, ModelInfo
from facegen.models import Architecture
from facegen.train import distributed
from facegen.train.config import ConfigError, TrainConfig, trained_architecture
from facegen.train.growth import ProgressiveGrowth, reals_at
from facegen.train.objectives import Objective

# An EMA with decay 0.999 would average over the untrained start for thousands of steps; this ramp makes the
# average follow the weights early on and reach the configured decay after a few hundred steps.
EMA_RAMP_OFFSET = 10

# images (uint8, or in [-1, 1] once pooled or on the device), attributes or None
Batch = tuple[torch.Tensor, torch.Tensor | None]


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


def leaving_host(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`tensor` ready to be copied to `device`: in pinned (page-locked) memory for a CUDA GPU, whose copies from it
    run asynchronously (`non_blocking`) while the GPU computes; as it is for the CPU, where nothing is copied."""
    return tensor.pin_memory() if device.type == "cuda" else tensor


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


@dataclass(frozen=True)
class Conditioning:
    """What the networks get besides noise: the data set's attribute labels, or nothing (no label names)."""

    label_names: tuple[str, ...] = ()

    @classmethod
    def for_architecture(cls, architecture: Architecture, data: str, attribute_names: tuple[str, ...]) -> Conditioning:
        if not architecture.is_conditional:
            return cls()
        if not attribute_names:
            raise ConfigError(
                f"{architecture.name} learns from attribute labels, and {data} has none. Use a CelebA folder or zip "
                "(list_attr_celeba.txt beside img_align_celeba/), or an hf: dataset with CelebA attribute columns; "
                "or train --arch dcgan, which needs no labels."
            )
        return cls(tuple(attribute_names))

    @property
    def label_count(self) -> int:
        return len(self.label_names)

    def labels(self, batch_labels: torch.Tensor | None) -> torch.Tensor | None:
        """What the networks are given for a batch whose images carry `batch_labels`."""
        return batch_labels if self.label_names else None

    def sample_labels(self, attributes: torch.Tensor | None, count: int) -> np.ndarray | None:
        """Labels for the fixed sample grid: those of the first data set images, so the grid shows varied faces."""
        if not self.label_names or attributes is None:
            return None
        rows = np.arange(count) % len(attributes)
        return attributes[torch.from_numpy(rows)].float().numpy()

    def info(self) -> dict[str, Any]:
        """What a checkpoint records so the Sample page offers a toggle per attribute."""
        if not self.label_names:
            return {}
        return {"c_dim": self.label_count, "label_names": list(self.label_names), "labels_are_attributes": True}


@dataclass(frozen=True)
class GANParts:
    """What an architecture contributes to its trainer; its description's `training.trainer` function builds them."""

    generator: nn.Module  # built from its config dataclass, kept as `generator.config`
    discriminator: nn.Module
    objective: Objective
    growth: ProgressiveGrowth | None = None


PartsBuilder = Callable[[TrainConfig, Conditioning], GANParts]


class GANTrainer:
    """Networks on the device, Adam optimizers, optional EMA, mixed precision, DDP wrapping; the parts decide the
    step (objective), what the networks are conditioned on, and whether they grow."""

    def __init__(
        self,
        config: TrainConfig,
        device: torch.device,
        context: distributed.Distributed,
        architecture: Architecture,
        parts: GANParts,
        conditioning: Conditioning = Conditioning(),
    ) -> None:
        self.config = config
        self.device = device
        self.architecture = architecture
        self.objective = parts.objective
        self.growth = parts.growth
        self.conditioning = conditioning
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.autocast_dtype = torch.bfloat16 if config.amp and has_native_bfloat16(device) else None
        self.generator = parts.generator.to(device, memory_format=self.memory_format)
        self.discriminator = parts.discriminator.to(device, memory_format=self.memory_format)
        self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False) if config.ema_decay else None
        betas = (config.beta1, config.beta2)
        self.optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas),
        }
        grows = self.growth is not None
        self.G = distributed.wrap(self.generator, context, device, grows)
        self.D = distributed.wrap(self.discriminator, context, device, grows)

    # -- a step ---------------------------------------------------------------------------------------------
    @property
    def batches_per_step(self) -> int:
        """Real batches one step (one generator update) consumes: one per critic update."""
        return self.objective.batches_per_step

    def prepare(self, step: int) -> dict[str, float]:
        """Set up for `step` (1-based); returns facts to log about it (growing: resolution and fade-in)."""
        return {} if self.growth is None else self.growth.prepare(list(self.networks().values()), step)

    def train_step(self, batches: list[Batch], noise: torch.Generator) -> dict[str, torch.Tensor]:
        return self.objective.step(self, batches, noise)

    @property
    def current_resolution(self) -> int:
        """The resolution this step trains at: the run's, or a growing network's current one."""
        return self.config.resolution if self.growth is None else self.growth.current_resolution(self.generator)

    def real_images(self, reals: torch.Tensor) -> torch.Tensor:
        if self.growth is None:
            return reals
        return self.growth.real_images(reals, self.generator).contiguous(memory_format=self.memory_format)

    def frozen_discriminator(self) -> contextlib.AbstractContextManager:
        return frozen(self.discriminator)

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

    def sample_labels(self, attributes: torch.Tensor | None) -> np.ndarray | None:
        return self.conditioning.sample_labels(attributes, self.config.sample_count)

    def generator_spec(self) -> GeneratorSpec:
        info = {"family": self.config.arch, "resolution": self.current_resolution, **self.conditioning.info()}
        return GeneratorSpec(self.architecture.checkpoint_architecture, self.generator.config, info)

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

    def host_batch(self, batch: Batch) -> Batch:
        """A data set batch (uint8 images) ready to leave the host: images at the resolution this step trains at
        (`reals_at`: uint8 unless a growth phase pools them down), pinned for a CUDA device."""
        images, labels = batch
        images = leaving_host(reals_at(images, self.current_resolution), self.device)
        return images, None if labels is None else leaving_host(labels, self.device)

    def to_device(self, batch: Batch) -> Batch:
        """A host batch on the device as the networks take it: uint8 images are converted to [-1, 1] there."""
        images, labels = batch
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        if images.dtype == torch.uint8:
            images = to_unit_range(images)
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


def parts_builder(architecture: Architecture) -> PartsBuilder:
    module_name, function_name = architecture.training.trainer.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def build_trainer(
    config: TrainConfig, device: torch.device, context: distributed.Distributed, attribute_names: tuple[str, ...] = ()
) -> GANTrainer:
    """The trainer `config.arch`'s description names; `attribute_names`: the data set's labels, if it has any."""
    architecture = trained_architecture(config.arch)
    conditioning = Conditioning.for_architecture(architecture, config.data, attribute_names)
    parts = parts_builder(architecture)(config, conditioning)
    return GANTrainer(config, device, context, architecture, parts, conditioning)
