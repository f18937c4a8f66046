"""facegen's own generator files: `NAME.safetensors` (tensors) beside `NAME.json` (architecture and config).

No pickle is involved: the JSON names an architecture that `facegen.models` describes, its config
fields, and the facts a `ModelInfo` needs; the safetensors file holds the state dict. The tensors' sha256 is
recorded at save time in `NAME.safetensors.sha256`, as the download cache records its files', so a recipe can name
exactly these weights and a later change to the file is noticed.
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
from facegen.hub import recorded_sha256, sha256_file, sha256_record_path
from facegen.limits import MAX_GENERATOR_PARAMETERS, MAX_LATENT_DIM, MAX_RESOLUTION
from facegen.models import build_generator, config_from_dict

FORMAT_NAME = "facegen-generator"
FORMAT_VERSION = 1
# config fields that size the network, as every architecture names them, with the range facegen builds
SIZE_FIELDS: dict[str, tuple[int, int]] = {
    "z_dim": (1, MAX_LATENT_DIM),
    "w_dim": (1, MAX_LATENT_DIM),
    "c_dim": (0, MAX_LATENT_DIM),
    "resolution": (4, MAX_RESOLUTION),
    "img_resolution": (4, MAX_RESOLUTION),
}


def config_path_for(weights_path: Path) -> Path:
    return weights_path.with_suffix(".json")


def save_generator(
    weights_path: str | Path,
    network: nn.Module,
    architecture: str,
    config: Any,
    info: dict[str, Any] | None = None,
) -> Path:
    """Write NAME.safetensors, its sha256 and NAME.json atomically (temporary files renamed into place)."""
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
    temporary_sha256 = weights_path.with_name(f".{sha256_record_path(weights_path).name}.partial")
    save_file(state, str(temporary_weights))
    temporary_sha256.write_text(sha256_file(temporary_weights) + "\n")
    temporary_config.write_text(json.dumps(description, indent=2, sort_keys=True))
    os.replace(temporary_weights, weights_path)
    os.replace(temporary_sha256, sha256_record_path(weights_path))
    os.replace(temporary_config, config_path_for(weights_path))
    return weights_path


def verified_sha256(weights_path: Path) -> str:
    """The file's sha256, checked against the one recorded when it was saved (files saved without one are hashed)."""
    actual = sha256_file(weights_path)
    recorded = recorded_sha256(weights_path)
    if recorded is not None and recorded != actual:
        record = sha256_record_path(weights_path).name
        raise CorruptFileError(
            f"{weights_path} changed after it was saved: its sha256 is {actual[:16]}…, but {record} recorded "
            f"{recorded[:16]}… when it was written. Restore the file from a copy; if you replaced it on purpose, "
            f"delete {record}."
        )
    return actual


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


def checked_config(description: dict[str, Any], config_path: Path) -> Any:
    """The architecture config the JSON describes, refused when it sizes a network beyond facegen's limits.

    Checked before the network is built: a tampered `z_dim: 10000000` would allocate tens of GB of random weights
    before the weights file is even opened. The parameters are counted on the meta device, which allocates none.
    """
    architecture, values = description.get("architecture"), description.get("config")
    damaged = "The file was damaged or edited: restore it from its run, or re-export or re-fetch the model."
    if not isinstance(values, dict):
        raise CorruptFileError(f"{config_path.name} has no config table. {damaged}")
    for name, (low, high) in SIZE_FIELDS.items():
        value = values.get(name, low)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise CorruptFileError(
                f"{config_path.name} declares {name} {value!r}; facegen builds networks with {name} from {low} to "
                f"{high}. {damaged}"
            )
    try:
        config = config_from_dict(architecture, values)
        with torch.device("meta"):
            skeleton = build_generator(architecture, config)
    except (TypeError, ValueError) as error:
        raise CorruptFileError(
            f"{config_path.name} does not describe a network facegen can build ({error}). {damaged}"
        ) from None
    parameters = sum(tensor.numel() for tensor in [*skeleton.parameters(), *skeleton.buffers()])
    if parameters > MAX_GENERATOR_PARAMETERS:
        raise CorruptFileError(
            f"{config_path.name} declares a {architecture} generator of {parameters:,} parameters; facegen builds "
            f"generators up to {MAX_GENERATOR_PARAMETERS:,}. {damaged}"
        )
    return config


def load_network(weights_path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    weights_path = Path(weights_path)
    description = read_description(weights_path)
    config = checked_config(description, config_path_for(weights_path))
    try:
        state = load_file(str(weights_path), device=str(device))
    except (SafetensorError, OSError) as error:
        raise CorruptFileError(
            f"{weights_path} is not a readable safetensors file ({error}). It may be truncated: re-fetch or "
            "re-export it."
        ) from None
    network = build_generator(description["architecture"], config)
    # the file's tensors take the place of the freshly initialised ones instead of being copied into them
    try:
        network.load_state_dict(state, assign=True)
    except RuntimeError as error:
        first_problem = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise CorruptFileError(
            f"The weights in {weights_path.name} do not match the network {config_path_for(weights_path).name} "
            f"describes ({first_problem}). The files were damaged, edited or mixed up: restore both from their run, "
            "or re-export or re-fetch the model."
        ) from None
    return network, description


def load_generator(
    weights_path: str | Path, model_id: str | None = None, device: str = "cpu"
) -> Generator:
    """Build a Generator from an own checkpoint; the JSON's `info` fills the ModelInfo, the network what it lacks."""
    weights_path = Path(weights_path)
    network, description = load_network(weights_path, device)
    config = description["config"]
    info_fields = {field.name for field in dataclasses.fields(ModelInfo)}
    info_values = {key: value for key, value in description.get("info", {}).items() if key in info_fields}
    info_values.setdefault("family", description["architecture"])
    info_values.setdefault("z_dim", config.get("z_dim"))
    drawn = drawn_resolution(network)
    if info_values.setdefault("resolution", drawn) != drawn:
        raise CorruptFileError(
            f"{config_path_for(weights_path).name} declares resolution {info_values['resolution']!r}, but its network "
            f"draws {drawn}x{drawn} images. The file was damaged or edited: restore it from its run, or re-export or "
            "re-fetch the model."
        )
    if "label_names" in info_values:
        info_values["label_names"] = tuple(info_values["label_names"])
    info_values["model_id"] = model_id or info_values.get("model_id") or str(weights_path)
    return Generator(network, ModelInfo(**info_values), device)


def drawn_resolution(network: nn.Module) -> int:
    """The side of the images `network` draws: a growing ProGAN's current one, else the one its config names
    (StyleGAN2's config calls it `img_resolution`, as NVIDIA's code does; the others `resolution`)."""
    growing_resolution = getattr(network, "current_resolution", None)
    if growing_resolution is not None:
        return growing_resolution
    config = network.config
    return config.img_resolution if hasattr(config, "img_resolution") else config.resolution
