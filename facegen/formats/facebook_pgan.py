"""Facebook's PGAN checkpoints (pytorch_GAN_zoo, the torch.hub `PGAN` models), read into facegen's ProGAN family.

A checkpoint is a `torch.save` of {'config', 'netG', 'netD', 'avgG'}; facegen samples from `avgG` (the averaged
generator torch.hub uses), else `netG`. It is read with `torch.load(weights_only=True)`: tensors and plain
containers only. `config` may be an instance of `models.utils.config.BaseConfig`, a plain object of settings;
that one class name is bound to an inert stand-in that only stores its attributes as data.

Generator names and their place in `facegen.models.progan_facebook` (level L is resolution 4 * 2^L):

    formatLayer.module.{weight,bias}         -> dense.weight [C*16, latent], dense.bias [C, 4, 4]
    groupScale0.0.module.*                   -> conv.*
    scaleLayers.{L-1}.{0,1}.module.*         -> blocks.{L-1}.conv{0,1}.*
    toRGBLayers.{L}.module.*                 -> to_rgb.{L}.*

Older files name `X.weight` where newer ones name `X.module.weight`; both are read. pytorch_GAN_zoo's equalized
layers multiply their whole output, bias included, by sqrt(2 / fan_in); facegen's scale the weight alone by the
layer's own gain / sqrt(fan_in). The reader folds the difference into the stored values, so the rendered images
are pytorch_GAN_zoo's.
"""

from __future__ import annotations

import math
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from facegen.errors import CorruptFileError, UnsafePickleError
from facegen.formats.tf_progan import progan_config_for, progan_generator
from facegen.generator import Generator
from facegen.models.progan_facebook import FacebookProGANConfig, FacebookProGANGenerator

CONFIG_CLASS = "models.utils.config.BaseConfig"
TANH_LOSSES = ("DCGAN", "MSE")  # pytorch_GAN_zoo ends the generator in tanh for these losses, linear otherwise


class _Settings:
    """Stands for pytorch_GAN_zoo's BaseConfig: keeps the attributes the file gives it, as data."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("a BaseConfig with a state that is not a dict of settings")
        self.__dict__.update(state)


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(generator state dict with `.module.` names, settings) of a pytorch_GAN_zoo checkpoint."""
    try:
        with torch.serialization.safe_globals([(_Settings, CONFIG_CLASS)]):
            content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "refused"
        raise UnsafePickleError(
            f"{path.name} holds more than weights and settings ({first_line}); facegen loads only tensors and "
            "plain data. Use the checkpoint from pytorch_GAN_zoo's release."
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CorruptFileError(
            f"{path.name} is not a readable PyTorch checkpoint ({first_line}). Fetch it again."
        ) from None
    if not isinstance(content, dict):
        raise CorruptFileError(f"{path.name} holds a {type(content).__name__}, not a pytorch_GAN_zoo checkpoint dict.")
    state = content.get("avgG") or content.get("netG")
    if not isinstance(state, dict) or not all(isinstance(tensor, torch.Tensor) for tensor in state.values()):
        raise CorruptFileError(f"{path.name} has no avgG or netG generator state (keys: {sorted(content)[:6]}).")
    config = content.get("config")
    settings = vars(config) if isinstance(config, _Settings) else config if isinstance(config, dict) else {}
    return {_current_name(name): tensor for name, tensor in state.items()}, settings


def _current_name(name: str) -> str:
    """Older pytorch_GAN_zoo saved `X.weight` for what it now names `X.module.weight`."""
    if ".module." in name:
        return name
    layer, _, kind = name.rpartition(".")
    return f"{layer}.module.{kind}"


def convert_facebook_pgan(
    state: dict[str, torch.Tensor], settings: dict[str, Any]
) -> tuple[FacebookProGANGenerator, dict[str, torch.Tensor]]:
    """GNet's state dict -> (facegen network, state dict to load into it), at the final resolution."""
    if not settings.get("perChannelNormalization", True) or settings.get("leakyReluLeak", 0.2) != 0.2:
        raise CorruptFileError(
            "its generator was trained without pixel norm or with another leaky ReLU slope than 0.2; facegen's "
            "ProGAN implements the paper's settings."
        )
    equalized = bool(settings.get("equalizedlR", True))

    def take(name: str) -> torch.Tensor:
        try:
            return state.pop(name).float()
        except KeyError:
            raise CorruptFileError(f"it has no tensor {name!r}; it is not a complete PGAN generator.") from None

    def layer(name: str) -> tuple[torch.Tensor, torch.Tensor, float]:
        weight, bias = take(f"{name}.module.weight"), take(f"{name}.module.bias")
        # the factor pytorch_GAN_zoo applies to this layer's whole output
        return weight, bias, math.sqrt(2 / weight[0].numel()) if equalized else 1.0

    scales = 1 + max((int(name.split(".")[1]) for name in state if name.startswith("scaleLayers.")), default=-1)
    format_weight, format_bias, format_scale = layer("formatLayer")
    channels = format_weight.shape[0] // 16
    effective: dict[str, tuple[torch.Tensor, torch.Tensor]] = {
        "dense": (format_weight * format_scale, (format_bias * format_scale).view(channels, 4, 4))
    }
    for target, source in [("conv", "groupScale0.0")] + [
        (f"blocks.{index}.conv{half}", f"scaleLayers.{index}.{half}") for index in range(scales) for half in (0, 1)
    ]:
        weight, bias, scale = layer(source)
        effective[target] = (weight * scale, bias * scale)
    for level in range(scales + 1):
        weight, bias, scale = layer(f"toRGBLayers.{level}")
        effective[f"to_rgb.{level}"] = (weight * scale, bias * scale)
    if state:
        raise CorruptFileError(f"it has tensors facegen's ProGAN has no place for: {sorted(state)[:5]}.")
    config = progan_config_for(
        [channels] + [effective[f"blocks.{index}.conv1"][0].shape[0] for index in range(scales)],
        z_dim=format_weight.shape[1],
        image_channels=effective["to_rgb.0"][0].shape[0],
        config_class=FacebookProGANConfig,
        tanh_output=settings.get("lossMode", "WGANGP") in TANH_LOSSES,
    )
    network = FacebookProGANGenerator(config)
    converted = {"lod": torch.zeros(())}
    for name, (weight, bias) in effective.items():
        # facegen's layer multiplies its stored weight by its own weight_scale at run time
        converted[f"{name}.weight"] = weight / network.get_submodule(name).weight_scale
        converted[f"{name}.bias"] = bias
    return network, converted


def load_facebook_pgan_generator(
    path: str | Path, model_id: str | None = None, device: str = "cpu"
) -> Generator:
    """A pytorch_GAN_zoo PGAN checkpoint's averaged generator as a facegen Generator."""
    path = Path(path)
    state, settings = read_checkpoint(path)
    try:
        network, converted = convert_facebook_pgan(state, settings)
    except CorruptFileError as error:
        raise CorruptFileError(f"{path.name}: {error}") from None
    description = f"Facebook PGAN (pytorch_GAN_zoo) from {path.name}"
    return progan_generator(network, converted, path, model_id, device, description)
