"""Test helper: small ProGAN files in the two released layouts, and a plain reference forward pass for each.

No reference outputs of the real networks exist offline, so the fixtures follow the documented layouts
(`shared/docs/formats-detail.md` D.1 and D.3) at tiny sizes, with random weights, and the references below
compute the documented math directly from the files' own tensors: no facegen module is used in them.

- NVIDIA's TensorFlow ProGAN: a pickle of (G, D, Gs) `tfutil.Network` objects (or Gs alone, like Streamlit's
  condensed copy) whose state holds `variables` named `4x4/Dense/weight`, `RxR/Conv0/weight` (or the fused
  `RxR/Conv0_up/weight`), `RxR/Conv1/weight`, `ToRGB_lod{K}/weight`, biases, and `lod`; TF layouts (HWIO).
- Facebook's PGAN: a `torch.save` of {'config', 'netG', 'netD', 'avgG'}, generator keys `formatLayer.module.*`,
  `groupScale0.0.module.*`, `scaleLayers.{i}.{0,1}.module.*`, `toRGBLayers.{j}.module.*`.
"""

from __future__ import annotations

import contextlib
import math
import pickle
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2)


@contextlib.contextmanager
def module_named(name: str, **attributes: Any) -> Iterator[None]:
    """Let pickle find `attributes` under module `name` while writing a fixture (pickle checks that it can)."""
    parts = name.split(".")
    packages = [".".join(parts[: count + 1]) for count in range(len(parts) - 1)]
    added = [package for package in packages if package not in sys.modules]
    previous = sys.modules.get(name)
    for package in added:
        sys.modules[package] = types.ModuleType(package)
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules[name] = module
    try:
        yield
    finally:
        for package in added:
            del sys.modules[package]
        if previous is None:
            del sys.modules[name]
        else:
            sys.modules[name] = previous


# -- NVIDIA's TensorFlow ProGAN -----------------------------------------------------------------------------


class TFNetwork:
    """Pickles as NVIDIA's `tfutil.Network` does: an empty object of that class, then its state dict."""

    def __init__(self, state: dict) -> None:
        self._state = state

    def __getstate__(self) -> dict:
        return self._state


TFNetwork.__module__, TFNetwork.__qualname__, TFNetwork.__name__ = "tfutil", "Network", "Network"


def features(stage: int, fmap_base: int, fmap_max: int) -> int:
    return min(int(fmap_base / 2.0**stage), fmap_max)


def tf_progan_variables(
    resolution: int = 16,
    z_dim: int = 8,
    fmap_base: int = 64,
    fmap_max: int = 16,
    fused: bool = False,
    lod: float = 0.0,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """G_paper's variables at a small size: unit-variance weights (as equalized lr stores them), random biases."""
    rng = np.random.default_rng(seed)
    levels = int(math.log2(resolution)) - 1
    channels = [features(level + 1, fmap_base, fmap_max) for level in range(levels)]

    def weight(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    variables = {
        "lod": np.float32(lod),
        "4x4/Dense/weight": weight(z_dim, channels[0] * 16),
        "4x4/Dense/bias": weight(channels[0]) * 0.1,
        "4x4/Conv/weight": weight(3, 3, channels[0], channels[0]),
        "4x4/Conv/bias": weight(channels[0]) * 0.1,
    }
    for level in range(1, levels):
        scope, previous, current = f"{4 * 2**level}x{4 * 2**level}", channels[level - 1], channels[level]
        if fused:
            variables[f"{scope}/Conv0_up/weight"] = weight(3, 3, current, previous)
            variables[f"{scope}/Conv0_up/bias"] = weight(current) * 0.1
        else:
            variables[f"{scope}/Conv0/weight"] = weight(3, 3, previous, current)
            variables[f"{scope}/Conv0/bias"] = weight(current) * 0.1
        variables[f"{scope}/Conv1/weight"] = weight(3, 3, current, current)
        variables[f"{scope}/Conv1/bias"] = weight(current) * 0.1
    for level in range(levels):
        variables[f"ToRGB_lod{levels - 1 - level}/weight"] = weight(1, 1, channels[level], 3)
        variables[f"ToRGB_lod{levels - 1 - level}/bias"] = weight(3) * 0.1
    return variables


def tf_network_state(name: str, variables: dict[str, np.ndarray], build_module_src: str, **settings: Any) -> dict:
    return {
        "version": 2,
        "name": name,
        "static_kwargs": {"num_channels": 3, "label_size": 0, **settings},
        "build_module_src": build_module_src,
        "build_func_name": "G_paper" if name.startswith("G") else "D_paper",
        "variables": list(variables.items()),
    }


def write_tf_progan(
    path: Path,
    variables: dict[str, np.ndarray],
    build_module_src: str = "",
    condensed: bool = False,
    protocol: int = 4,
    **settings: Any,
) -> Path:
    """(G, D, Gs) like NVIDIA's release, or Gs alone like Streamlit's condensed copy."""
    gs = TFNetwork(tf_network_state("Gs", variables, build_module_src, **settings))
    if condensed:
        content: Any = gs
    else:
        g = TFNetwork(tf_network_state("G", variables, build_module_src, **settings))
        d = TFNetwork(tf_network_state("D", {"Conv/weight": np.zeros((3, 3, 3, 4), np.float32)}, build_module_src))
        content = (g, d, gs)
    with module_named("tfutil", Network=TFNetwork):
        path.write_bytes(pickle.dumps(content, protocol=protocol))
    return path


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt((x * x).mean(dim=1, keepdim=True) + 1e-8)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return torch.maximum(0.2 * x, x)


def nearest_up(x: torch.Tensor) -> torch.Tensor:
    return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


def tf_progan_reference(variables: dict[str, np.ndarray], z: np.ndarray) -> torch.Tensor:
    """NVIDIA's G_paper, 'linear' structure, from the documented math: always full resolution, lod blending."""
    v = {name: torch.from_numpy(np.asarray(value, dtype=np.float32)) for name, value in variables.items()}
    lod = float(v["lod"])
    levels = sum(1 for name in v if name.startswith("ToRGB_lod") and name.endswith("weight"))

    def conv(x: torch.Tensor, scope: str, gain: float = SQRT2) -> torch.Tensor:
        w = v[f"{scope}/weight"]  # [k, k, in, out]
        w = w * gain / math.sqrt(w.shape[0] * w.shape[1] * w.shape[2])
        return F.conv2d(x, w.permute(3, 2, 0, 1), padding=w.shape[0] // 2) + v[f"{scope}/bias"].view(1, -1, 1, 1)

    def fused_up_conv(x: torch.Tensor, scope: str) -> torch.Tensor:
        w = v[f"{scope}/weight"]  # [3, 3, out, in]
        w = w * SQRT2 / math.sqrt(9 * w.shape[3])
        w = F.pad(w.permute(2, 3, 0, 1), (1, 1, 1, 1)).permute(2, 3, 0, 1)  # pad the kernel to 5x5
        w = w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]  # 4x4: the sum of its four one-pixel shifts
        y = F.conv_transpose2d(x, w.permute(3, 2, 0, 1), stride=2, padding=1)
        return y + v[f"{scope}/bias"].view(1, -1, 1, 1)

    x = pixel_norm(torch.from_numpy(z))
    dense = v["4x4/Dense/weight"] * (SQRT2 / 4) / math.sqrt(v["4x4/Dense/weight"].shape[0])
    x = (x @ dense).view(len(z), -1, 4, 4) + v["4x4/Dense/bias"].view(1, -1, 1, 1)
    x = pixel_norm(lrelu(x))
    x = pixel_norm(lrelu(conv(x, "4x4/Conv")))
    image = conv(x, f"ToRGB_lod{levels - 1}", gain=1.0)
    for level in range(1, levels):
        scope = f"{4 * 2**level}x{4 * 2**level}"
        if f"{scope}/Conv0_up/weight" in v:
            x = pixel_norm(lrelu(fused_up_conv(x, f"{scope}/Conv0_up")))
        else:
            x = pixel_norm(lrelu(conv(nearest_up(x), f"{scope}/Conv0")))
        x = pixel_norm(lrelu(conv(x, f"{scope}/Conv1")))
        level_lod = levels - 1 - level
        blend = min(max(lod - level_lod, 0.0), 1.0)
        image = torch.lerp(conv(x, f"ToRGB_lod{level_lod}", gain=1.0), nearest_up(image), blend)
    return image


# -- Facebook's PGAN ----------------------------------------------------------------------------------------


class BaseConfig:
    """Pickles as pytorch_GAN_zoo's `models.utils.config.BaseConfig`: a plain object of settings."""

    def __init__(self, **settings: Any) -> None:
        self.__dict__.update(settings)


BaseConfig.__module__, BaseConfig.__qualname__, BaseConfig.__name__ = "models.utils.config", "BaseConfig", "BaseConfig"


def facebook_pgan_generator(
    depths: list[int] | None = None, z_dim: int = 8, legacy_keys: bool = False, seed: int = 0
) -> OrderedDict:
    """A GNet state dict; depth[0] is the 4x4 scale. Weights ~N(0,1) as equalized lr stores them."""
    depths = depths or [16, 16, 8]
    generator = torch.Generator().manual_seed(seed)

    def weight(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    module = "" if legacy_keys else "module."
    state = OrderedDict()
    for index, (previous, current) in enumerate(zip(depths, depths[1:])):
        state[f"scaleLayers.{index}.0.{module}weight"] = weight(current, previous, 3, 3)
        state[f"scaleLayers.{index}.0.{module}bias"] = weight(current) * 0.1
        state[f"scaleLayers.{index}.1.{module}weight"] = weight(current, current, 3, 3)
        state[f"scaleLayers.{index}.1.{module}bias"] = weight(current) * 0.1
    for index, depth in enumerate(depths):
        state[f"toRGBLayers.{index}.{module}weight"] = weight(3, depth, 1, 1)
        state[f"toRGBLayers.{index}.{module}bias"] = weight(3) * 0.1
    state[f"formatLayer.{module}weight"] = weight(16 * depths[0], z_dim)
    state[f"formatLayer.{module}bias"] = weight(16 * depths[0]) * 0.1
    state[f"groupScale0.0.{module}weight"] = weight(depths[0], depths[0], 3, 3)
    state[f"groupScale0.0.{module}bias"] = weight(depths[0]) * 0.1
    return state


def write_facebook_pgan(
    path: Path, generator_state: OrderedDict, config: Any = None, legacy_format: bool = True
) -> Path:
    """A pytorch_GAN_zoo checkpoint; the 2019 release files predate torch's zip format, hence legacy by default."""
    content = {
        "config": BaseConfig(depthScale0=16, lossMode="WGANGP") if config is None else config,
        "netG": generator_state,
        "netD": OrderedDict(decisionLayer=torch.zeros(1, 16)),
        "avgG": generator_state,
    }
    with module_named("models.utils.config", BaseConfig=BaseConfig):
        torch.save(content, path, _use_new_zipfile_serialization=not legacy_format)
    return path


def facebook_pgan_reference(state: dict[str, torch.Tensor], z: np.ndarray, tanh: bool = False) -> torch.Tensor:
    """pytorch_GAN_zoo's GNet at alpha 0: every layer's output, bias included, times sqrt(2 / fan_in)."""
    state = {name.replace(".module.", "."): tensor for name, tensor in state.items()}

    def equalized(x: torch.Tensor, layer: str, convolution: bool = True) -> torch.Tensor:
        w, b = state[f"{layer}.weight"], state[f"{layer}.bias"]
        scale = math.sqrt(2 / w[0].numel())
        y = F.conv2d(x, w, b, padding=w.shape[-1] // 2) if convolution else F.linear(x, w, b)
        return y * scale

    scales = 1 + max(int(name.split(".")[1]) for name in state if name.startswith("scaleLayers"))
    x = pixel_norm(torch.from_numpy(z))
    x = lrelu(equalized(x, "formatLayer", convolution=False)).view(len(z), -1, 4, 4)
    x = pixel_norm(x)
    x = pixel_norm(lrelu(equalized(x, "groupScale0.0")))
    for index in range(scales):
        x = nearest_up(x)
        x = pixel_norm(lrelu(equalized(x, f"scaleLayers.{index}.0")))
        x = pixel_norm(lrelu(equalized(x, f"scaleLayers.{index}.1")))
    image = equalized(x, f"toRGBLayers.{scales}")
    return torch.tanh(image) if tanh else image
