"""facegen's own generator files: `NAME.safetensors` (tensors) beside `NAME.json` (architecture and config).

No pickle is involved: the JSON names an architecture that `facegen.models` describes, its config
fields, and the facts a `ModelInfo` needs; the safetensors file holds the state dict.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from facegen.errors import CorruptFileError
from facegen.generator import Generator, ModelInfo
from facegen.models import build_generator, config_from_dict

FORMAT_NAME = "facegen-generator"
FORMAT_VERSION = 1


def config_path_for(weights_path: Path) -> Path:
    return weights_path.with_suffix(".json")


def save_generator(
    weights_path: str | Path,
    network: nn.Module,
    architecture: str,
    config: Any,
    info: dict[str, Any] | None = None,
) -> Path:
    """Write NAME.safetensors and NAME.json atomically (temporary files renamed into place)."""
    weights_path = Path(weights_path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in network.state_dict().items()}
    description = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "config": dataclasses.asdict(config),
        "info": info or {},
    }
    temporary_weights = weights_path.with_name(f".{weights_path.name}.partial")
    temporary_config = weights_path.with_name(f".{weights_path.stem}.json.partial")
    save_file(state, str(temporary_weights))
    temporary_config.write_text(json.dumps(description, indent=2, sort_keys=True))
    os.replace(temporary_weights, weights_path)
    os.replace(temporary_config, config_path_for(weights_path))
    return weights_path


def read_description(weights_path: Path) -> dict[str, Any]:
    config_path = config_path_for(weights_path)
    try:
        description = json.loads(config_path.read_text())
    except FileNotFoundError:
        raise CorruptFileError(
            f"{weights_path.name} has no config beside it ({config_path.name}). facegen checkpoints are a "
            ".safetensors file plus a .json file of the same name; copy both."
        ) from None
    except json.JSONDecodeError as error:
        raise CorruptFileError(f"{config_path} is not valid JSON ({error}). Restore it from the run or re-fetch.") from None
    if description.get("format") != FORMAT_NAME:
        raise CorruptFileError(f"{config_path} is not a facegen generator config (no 'format: {FORMAT_NAME}').")
    return description


def load_network(weights_path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    weights_path = Path(weights_path)
    description = read_description(weights_path)
    config = config_from_dict(description["architecture"], description["config"])
    try:
        state = load_file(str(weights_path), device=str(device))
    except (SafetensorError, OSError) as error:
        raise CorruptFileError(
            f"{weights_path} is not a readable safetensors file ({error}). It may be truncated: re-fetch or "
            "re-export it."
        ) from None
    network = build_generator(description["architecture"], config)
    # the file's tensors take the place of the freshly initialised ones instead of being copied into them
    network.load_state_dict(state, assign=True)
    return network, description


def load_generator(weights_path: str | Path, model_id: str | None = None, device: str = "cpu") -> Generator:
    """Build a Generator from an own checkpoint; the JSON's `info` fills the ModelInfo."""
    weights_path = Path(weights_path)
    network, description = load_network(weights_path, device)
    config = description["config"]
    info_fields = {field.name for field in dataclasses.fields(ModelInfo)}
    info_values = {key: value for key, value in description.get("info", {}).items() if key in info_fields}
    info_values.setdefault("family", description["architecture"])
    info_values.setdefault("z_dim", config.get("z_dim"))
    info_values.setdefault("resolution", config.get("resolution"))
    if "label_names" in info_values:
        info_values["label_names"] = tuple(info_values["label_names"])
    info_values["model_id"] = model_id or info_values.get("model_id") or str(weights_path)
    return Generator(network, ModelInfo(**info_values), device)
