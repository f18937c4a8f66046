"""ProGAN's growth schedule (Karras et al. 2018, section 3): train at a low resolution, then fade each doubling in.

Steps are split into phases: a stable phase at the start resolution, then per doubling a fade-in (the new
resolution's weight `alpha` rising from 0 to 1) and a stable phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facegen.data import to_unit_range


@dataclass(frozen=True)
class GrowthStage:
    resolution: int
    alpha: float  # weight of the newest resolution while it fades in; 1 when stable


def growth_resolutions(config: Any) -> list[int]:
    count = int(math.log2(config.resolution // config.start_resolution)) + 1
    return [config.start_resolution * 2**index for index in range(count)]


def growth_phase_steps(config: Any) -> int:
    """Steps per phase: a stable phase at the start resolution, then a fade-in and a stable phase per doubling."""
    phases = 2 * len(growth_resolutions(config)) - 1
    return config.phase_steps or max(1, config.steps // phases)


def growth_stage(config: Any, step: int) -> GrowthStage:
    """The resolution and fade-in weight of `step` (1-based) for a config with resolution, start_resolution,
    phase_steps and steps."""
    resolutions = growth_resolutions(config)
    phase_steps = growth_phase_steps(config)
    phase, position = divmod(step - 1, phase_steps)
    if phase >= 2 * len(resolutions) - 1:
        return GrowthStage(resolutions[-1], 1.0)
    index = (phase + 1) // 2
    fading = phase % 2 == 1
    return GrowthStage(resolutions[index], (position + 1) / phase_steps if fading else 1.0)


def reals_at(pixels: torch.Tensor, resolution: int) -> torch.Tensor:
    """uint8 real images [N, 3, R, R] brought to `resolution`: unchanged (uint8) when they are there already, else
    in [-1, 1] and average-pooled down to it, as NVIDIA's process_reals does.

    The float images are pooled, as the networks see them (a uint8 mean would round). Done before the batch leaves
    the host, this sends a low-resolution phase's device only the pixels it trains on, not the data set's.
    """
    if pixels.shape[-1] == resolution:
        return pixels
    return F.avg_pool2d(to_unit_range(pixels), pixels.shape[-1] // resolution)


class ProgressiveGrowth:
    """Sets every network to the stage of each step and brings the real images to that stage too."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def prepare(self, networks: list[nn.Module], step: int) -> dict[str, float]:
        stage = growth_stage(self.config, step)
        for network in networks:
            network.set_growth(stage.resolution, stage.alpha)
        return {"resolution": stage.resolution, "alpha": stage.alpha}

    @staticmethod
    def current_resolution(generator: nn.Module) -> int:
        return generator.current_resolution

    @staticmethod
    def real_images(reals: torch.Tensor, generator: nn.Module) -> torch.Tensor:
        """Reals already at the growth resolution (`reals_at`); while it fades in, blended with their blurrier
        half-resolution version exactly as the generator blends its output (NVIDIA's process_reals)."""
        if generator.alpha < 1.0:
            coarse = F.interpolate(F.avg_pool2d(reals, 2), scale_factor=2, mode="nearest")
            reals = torch.lerp(coarse, reals, generator.alpha)
        return reals
