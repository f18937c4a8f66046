"""`facegen train`: train one of the architectures facegen trains (their descriptions in facegen.models) into a
run directory.

Every setting is an option (`--sample-every 50`): the run settings, and each architecture's own, which only that
architecture accepts. A --config file (.json or .toml) holds the same settings, and options given on the command
line win over it. `--resume RUN_DIR` continues a run.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

import facegen.registry  # noqa: F401 - on import it hands the data layer the catalog model demo:digiface renders with
from facegen.errors import FacegenError
from facegen.models import trainable_architectures
from facegen.spec import RunRef
from facegen.train import distributed, runs

if TYPE_CHECKING:
    from facegen.train.loop import TrainResult

HELP = {
    "data": "images: a folder, a .zip, a CelebA folder, hf:OWNER/NAME, demo:lfw or demo:digiface?n=N",
    "steps": "generator updates to train for",
    "out": "run directory to create (e.g. runs/my-faces)",
    "batch": "images per batch, over all processes (default 64)",
    "seed": "seed of initial weights, data order and noise (default 0)",
    "deterministic": "deterministic kernels: a killed and resumed run ends with the same weights (slower on GPUs)",
    "start_resolution": "resolution growing starts from (default 16)",
    "phase_steps": "steps per fade-in and per stable phase (default: steps split evenly)",
    "keep_checkpoints": "newest checkpoints to keep besides marked ones (default 3)",
    "device": "auto, cpu, cuda or cuda:N (default auto)",
    "amp": "bfloat16 mixed precision where the GPU or CPU computes bfloat16 natively (default on)",
    "channels_last": "NHWC memory layout (default on)",
}


def _option_type(annotation: str) -> type:
    return int if "int" in annotation else float if "float" in annotation else str


def settings_fields() -> list[tuple[dataclasses.Field, tuple[str, ...]]]:
    """Every setting a run can have, with the architectures it belongs to (() for every architecture's)."""
    from facegen.train.config import TrainConfig

    architectures = trainable_architectures()
    owners: dict[str, tuple[dataclasses.Field, list[str]]] = {
        field.name: (field, []) for field in dataclasses.fields(TrainConfig)
    }
    for architecture in architectures:
        for field in dataclasses.fields(architecture.training.settings_class):
            owners.setdefault(field.name, (field, []))[1].append(architecture.name)
    return [
        (field, tuple(names) if 0 < len(names) < len(architectures) else ())
        for field, names in owners.values()
    ]


def _help(field: dataclasses.Field, owners: tuple[str, ...]) -> str:
    if field.name == "arch":
        return "architecture: " + "; ".join(f"{a.name}: {a.title}" for a in trainable_architectures())
    if field.name == "resolution":
        return "image size: " + "; ".join(
            f"{a.name}: {', '.join(map(str, a.training.resolutions))} (default {a.training.setting_defaults()['resolution']})"
            for a in trainable_architectures()
        )
    text = HELP.get(field.name, "")
    return f"{text} [{', '.join(owners)}]".strip() if owners else text or None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Train a face GAN. Options override --config; --resume continues a run from its last checkpoint. "
        "Options marked [ARCH, ...] belong to those architectures only."
    )
    parser.add_argument("--config", help="a .json or .toml file of settings (keys as the options, e.g. sample_every)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its newest checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_settings_options(parser)
    parser.set_defaults(run=run)


def add_settings_options(parser: argparse.ArgumentParser) -> None:
    for field, owners in settings_fields():
        option = "--" + field.name.replace("_", "-")
        help_text = _help(field, owners)
        if "bool" in str(field.type):
            parser.add_argument(option, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            parser.add_argument(option, type=_option_type(str(field.type)), default=None, help=help_text)


def given_settings(args: argparse.Namespace) -> dict:
    names = [field.name for field, _ in settings_fields()]
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def run(args: argparse.Namespace) -> int:
    from facegen.train.config import read_config_file, resolve_config
    from facegen.train.loop import resume_run, start_run

    settings = given_settings(args)
    show_progress = not args.no_progress
    if args.resume:
        extra = sorted(set(settings) - {"steps"})
        if extra or args.config:
            given = ", ".join("--" + name.replace("_", "-") for name in extra) or "--config"
            raise FacegenError(
                f"--resume continues a run with the settings it started with; drop {given} (only --steps, to "
                "train longer, may be given)."
            )
        result = resume_run(args.resume, settings.get("steps"), progress=show_progress)
    else:
        file_settings = read_config_file(args.config) if args.config else {}
        config = resolve_config({**file_settings, **settings})
        if not config.out:
            raise FacegenError("Missing --out: give the run directory to create, e.g. --out runs/my-faces.")
        result = start_run(config, config.out, progress=show_progress)
    if distributed.from_environment().is_writer:
        report(result)
    return 0


def report(result: TrainResult) -> None:
    verb = "Stopped" if result.state == "stopped" else "Finished"
    print(f"{verb} at step {result.step}: {result.run_dir}")
    if result.checkpoint is not None:
        reference = result.run_dir.name if result.run_dir.resolve().parent == runs.default_runs_root().resolve() else result.run_dir
        print(f"Checkpoint: {result.checkpoint}")
        print(f"Sample it: python -m facegen sample --model {RunRef(str(reference))} --seeds 0-15 --out grid.png")
    if result.state == "stopped":
        print(f"Continue it: python -m facegen train --resume {result.run_dir}")
