"""PyTorch checkpoints of the DCGAN tutorial's generator (e.g. `gan-face-generate`'s `weights.tar`).

Read with `torch.load(weights_only=True)` only: tensors and plain containers, never code. The architecture's
sizes are read off the tensor shapes, so any tutorial-style generator (other nz, ngf, 32 or 64 pixels) loads.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from facegen.errors import CorruptFileError
from facegen.generator import Generator, ModelInfo
from facegen.models.dcgan import DCGANConfig, DCGANGenerator

STATE_DICT_KEYS = ("netG_state_dict", "generator", "state_dict", "netG")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CorruptFileError(
            f"{path} is not a readable weights-only PyTorch checkpoint ({first_line}). If it was downloaded, it "
            "may be truncated: fetch it again."
        ) from None
    if isinstance(content, dict):
        for key in STATE_DICT_KEYS:
            if isinstance(content.get(key), dict):
                return content[key]
        if all(isinstance(value, torch.Tensor) for value in content.values()):
            return content
    raise CorruptFileError(f"{path} holds no DCGAN generator state dict (looked for keys {', '.join(STATE_DICT_KEYS)}).")


def dcgan_config_from_state(state: dict[str, torch.Tensor]) -> DCGANConfig:
    first = state.get("main.0.weight")
    if first is None or first.ndim != 4:
        raise CorruptFileError("The checkpoint is not a DCGAN tutorial generator (no 4-D main.0.weight).")
    transposed_convs = [name for name, tensor in state.items() if name.endswith(".weight") and tensor.ndim == 4]
    last = state[transposed_convs[-1]]
    return DCGANConfig(
        z_dim=first.shape[0],
        generator_channels=first.shape[1] // 2 ** (len(transposed_convs) - 2),
        resolution=4 * 2 ** (len(transposed_convs) - 1),
        image_channels=last.shape[1],
    )


def load_dcgan_generator(path: Path, model_id: str, device: str = "cpu") -> Generator:
    state = read_state_dict(path)
    config = dcgan_config_from_state(state)
    network = DCGANGenerator(config)
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        raise CorruptFileError(f"{path} does not fit a DCGAN generator: {str(error).splitlines()[0]}") from None
    info = ModelInfo(
        model_id=model_id,
        family="dcgan",
        z_dim=config.z_dim,
        resolution=config.resolution,
    )
    return Generator(network, info, device)
