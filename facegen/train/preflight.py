"""What a training start checks before it writes anything: the device, the output folder, the data.

A start that is refused here changes nothing on disk, so a typo in a data path leaves no crashed run behind. The
app calls the same check before it launches the training process, so the message appears on the page at once.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from facegen.train import runs
from facegen.train.config import ConfigError, TrainConfig

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def check_training_start(config: TrainConfig, run_dir: str | Path) -> None:
    """Raise a FacegenError naming the problem and the fix when this run cannot start; write nothing."""
    check_device(config.device)
    check_output_folder(Path(run_dir))
    check_data(config)


def check_device(requested: str) -> None:
    if requested == "auto":
        return
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError):
        raise ConfigError(f"Device {requested!r} is not a device: choose {DEVICE_CHOICES}.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"Device {requested!r} needs a CUDA GPU, and this machine has none that PyTorch can use. Choose "
                "device cpu (or auto, which takes a GPU only when there is one)."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"Device {requested!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s), "
                f"cuda:0 to cuda:{torch.cuda.device_count() - 1}."
            )
    elif device.type != "cpu":
        raise ConfigError(f"Device {requested!r} cannot train here: choose {DEVICE_CHOICES}.")


def check_output_folder(run_dir: Path) -> None:
    from facegen.train.loop import never_trained  # the loop calls this module: imported when used

    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"The output folder {run_dir} is a file. Choose another name for the run.")
    if run_dir.is_dir():
        runs.refuse_if_held(run_dir)  # a run in progress is named as such, not as a folder of files
    if run_dir.is_dir() and any(run_dir.iterdir()) and not never_trained(run_dir):
        raise ConfigError(
            f"{run_dir} already holds files. Continue that run (train --resume {run_dir}), or choose a new name for "
            "this one."
        )
    existing = next(parent for parent in (run_dir, *run_dir.parents) if parent.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"Cannot create {run_dir}: {existing} is not a folder you can write to. Choose another place.")


def check_data(config: TrainConfig) -> None:
    from facegen.data import find_source

    source = find_source(config.data)
    if config.batch > source.count:
        raise ConfigError(
            f"Batch {config.batch} is larger than the dataset ({source.count:,} images in {source.label}). Use a "
            f"batch of {max(1, source.count // 2)} or less, or add images."
        )
