"""Training checkpoints: networks, optimizers and RNG states as safetensors + JSON, never pickle.

One checkpoint folder (see `runs.py` for where it lives and how it is written atomically) holds
    generator.safetensors/.json       facegen's own generator format: `facegen sample --model run:NAME` loads it
    generator_ema.safetensors/.json   the moving-average generator, when the run keeps one
    discriminator.safetensors         the discriminator's state dict
    training_state.safetensors/.json  optimizer tensors and the torch RNG states / step, images seen, optimizer
                                      hyper-parameters, numpy and Python RNG states
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from facegen.errors import CorruptFileError, FacegenError
from facegen.formats.checkpoint import save_generator
from facegen.train import runs
from facegen.train.gans import GANTrainer

STATE_FORMAT = "facegen-training-state"
STATE_VERSION = 1


@dataclass(frozen=True)
class TrainingProgress:
    step: int
    images_seen: int


def _state_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()}


def _optimizer_parts(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state dict into tensors (for safetensors) and plain values (for JSON)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        plain[str(index)] = {}
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{name}.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain[str(index)][key] = value
    return tensors, {"param_groups": state["param_groups"], "state": plain}


def _optimizer_state(name: str, description: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(index): dict(values) for index, values in description["state"].items()}
    prefix = f"optimizer.{name}."
    for key, tensor in tensors.items():
        if key.startswith(prefix):
            index, field = key[len(prefix) :].split(".", 1)
            state.setdefault(int(index), {})[field] = tensor
    return {"state": state, "param_groups": description["param_groups"]}


def _rng_parts() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = state
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    plain = {
        "numpy": [kind, keys.tolist(), position, has_gauss, cached_gaussian],
        "python": [version, list(python_state), gauss_next],
    }
    return tensors, plain


def _restore_rng(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[key] for key in sorted(key for key in tensors if key.startswith("rng.cuda."))]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    kind, keys, position, has_gauss, cached_gaussian = plain["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached_gaussian))
    version, python_state, gauss_next = plain["python"]
    random.setstate((version, tuple(python_state), gauss_next))


def save_checkpoint(trainer: GANTrainer, folder: Path, progress: TrainingProgress, info: dict[str, Any]) -> None:
    """Fill `folder` (a staging folder; the caller renames it into place) with everything a resume needs."""
    spec = trainer.generator_spec()
    generator_info = dict(spec.info, **info)
    save_generator(folder / runs.GENERATOR_FILE, trainer.generator, spec.architecture, spec.config, generator_info)
    if trainer.generator_ema is not None:
        ema_info = dict(generator_info, description=f"{generator_info.get('description', '')} (moving average)".strip())
        save_generator(folder / runs.GENERATOR_EMA_FILE, trainer.generator_ema, spec.architecture, spec.config, ema_info)
    save_file(_state_tensors(trainer.discriminator), str(folder / runs.DISCRIMINATOR_FILE))
    tensors, rng_plain = _rng_parts()
    optimizers = {}
    for name, optimizer in trainer.optimizers.items():
        optimizer_tensors, optimizers[name] = _optimizer_parts(name, optimizer)
        tensors.update(optimizer_tensors)
    save_file(tensors, str(folder / runs.TRAINING_STATE_TENSORS))
    description = {
        "format": STATE_FORMAT,
        "format_version": STATE_VERSION,
        "step": progress.step,
        "images_seen": progress.images_seen,
        "optimizers": optimizers,
        "rng": rng_plain,
    }
    (folder / runs.TRAINING_STATE_JSON).write_text(json.dumps(description))


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise CorruptFileError(f"{path} cannot be read ({error}). Resume from an earlier checkpoint.") from None


def check_resumable(folder: Path) -> None:
    missing = [name for name in (runs.DISCRIMINATOR_FILE, runs.TRAINING_STATE_TENSORS, runs.TRAINING_STATE_JSON) if not (folder / name).is_file()]
    if missing:
        raise FacegenError(
            f"Checkpoint {folder} holds only the generator (no {', '.join(missing)}), so training cannot continue "
            "from it; the shipped starter run is stored that way to stay small. Sample from it with "
            "--model run:NAME, or train a new run (--out NEW_DIR)."
        )


def load_checkpoint(trainer: GANTrainer, folder: Path) -> TrainingProgress:
    """Restore networks, optimizers and RNG states from a checkpoint folder; returns where training stood."""
    check_resumable(folder)
    description = json.loads((folder / runs.TRAINING_STATE_JSON).read_text())
    if description.get("format") != STATE_FORMAT:
        raise CorruptFileError(f"{folder / runs.TRAINING_STATE_JSON} is not a facegen training state.")
    trainer.generator.load_state_dict(_load_tensors(folder / runs.GENERATOR_FILE))
    if trainer.generator_ema is not None:
        trainer.generator_ema.load_state_dict(_load_tensors(folder / runs.GENERATOR_EMA_FILE))
    trainer.discriminator.load_state_dict(_load_tensors(folder / runs.DISCRIMINATOR_FILE))
    tensors = _load_tensors(folder / runs.TRAINING_STATE_TENSORS)
    for name, optimizer in trainer.optimizers.items():
        optimizer.load_state_dict(_optimizer_state(name, description["optimizers"][name], tensors))
    _restore_rng(tensors, description["rng"])
    return TrainingProgress(int(description["step"]), int(description["images_seen"]))
