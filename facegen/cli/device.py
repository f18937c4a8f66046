"""The --device and --precision options every rendering command shares, checked before a model loads."""

from __future__ import annotations

import argparse

import torch

from facegen import hub
from facegen.device import DEFAULT_PRECISION, DEVICE_HELP, PRECISION_HELP, PRECISIONS, check_precision, resolve_device
from facegen.generator import Generator
from facegen.registry import load_generator


def add_device_options(parser: argparse.ArgumentParser, precision: bool = True) -> None:
    """--device (and --precision, for commands that render images) on `parser`."""
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    if precision:
        parser.add_argument("--precision", default=DEFAULT_PRECISION, choices=PRECISIONS, help=PRECISION_HELP)


def checked_device(args: argparse.Namespace) -> torch.device:
    """The device (and precision) the options ask for, refused in one line when this machine lacks them."""
    device = resolve_device(args.device)
    if getattr(args, "precision", None) is not None:
        check_precision(args.precision, device)
    return device


def load_generator_for(
    args: argparse.Namespace, model_spec: str, device: torch.device, progress: hub.ProgressCallback | None = None
) -> Generator:
    """The model on the checked device, computing in the requested precision."""
    generator = load_generator(model_spec, device=str(device), progress=progress)
    return generator.set_precision(getattr(args, "precision", "fp32"))
