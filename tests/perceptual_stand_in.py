"""Stand-ins for NVIDIA's LPIPS VGG16 TorchScript file (which cannot be downloaded here): TorchScript modules with
its calling convention, `net(images_0_255, resize_images=False, return_lpips=True) -> features [N, F]`, computing
LPIPS the way the real one does over their own convolution stacks: LPIPS' input scaling, then after every stage
unit-normalised channels, weighted per channel and averaged over positions (the 1/sqrt(H*W) makes the squared
feature distance a spatial mean). Random weights: good for tests of the machinery and for timing, not for taste.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# LPIPS' ScalingLayer constants, for images in [-1, 1]
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)


class LpipsStage(nn.Module):
    def __init__(self, layers: nn.Module, channels: int) -> None:
        super().__init__()
        self.layers = layers
        self.channel_weights = nn.Parameter(torch.rand(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class LpipsStandIn(nn.Module):
    def __init__(self, stages: list[tuple[nn.Module, int]]) -> None:
        super().__init__()
        self.stages = nn.ModuleList([LpipsStage(layers, channels) for layers, channels in stages])
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor, resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
        if resize_images:
            images = F.interpolate(images, size=(224, 224), mode="area")
        x = (images / 127.5 - 1 - self.shift) / self.scale
        features = []
        for stage in self.stages:
            x = stage(x)
            unit = x * torch.rsqrt(x.square().sum(dim=1, keepdim=True) + 1e-10)
            weighted = unit * stage.channel_weights.view(1, -1, 1, 1).sqrt()
            features.append(weighted.flatten(1) / math.sqrt(x.shape[2] * x.shape[3]))
        return torch.cat(features, dim=1)


def tiny_stand_in() -> LpipsStandIn:
    """Three small stages: fast enough for tests."""
    torch.manual_seed(0)
    return LpipsStandIn(
        [
            (nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU()), 16),
            (nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU()), 32),
            (nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU()), 32),
        ]
    )


def vgg16_stand_in() -> LpipsStandIn:
    """torchvision's VGG16 convolution stack with random weights, cut where LPIPS takes its five features
    (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3): the size and cost of NVIDIA's network."""
    import torchvision

    torch.manual_seed(0)
    layers = torchvision.models.vgg16(weights=None).features
    cuts = [(0, 4, 64), (4, 9, 128), (9, 16, 256), (16, 23, 512), (23, 30, 512)]
    return LpipsStandIn([(layers[start:end], channels) for start, end, channels in cuts])


def save_scripted(module: nn.Module, path: Path) -> Path:
    """The module as a TorchScript file, as NVIDIA's vgg16.pt is stored: with parameters that need no gradient
    (NVIDIA's projector computes the target's features outside no_grad and reuses them every step, which only
    works when no graph hangs on them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch deprecates TorchScript; the file format is the point
        torch.jit.save(torch.jit.script(module.eval().requires_grad_(False)), str(path))
    return path
