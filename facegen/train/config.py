"""Training settings: the run settings every run has plus its architecture's own (the settings class its
description names), filled from defaults, a config file and the command line, then checked.

`resolve_config` turns a user's partial settings into a complete config with every default written out, which
the run directory stores as `config.json`, so a run always records what it actually did. A run's config is an
instance of `config_class(architecture)`: a dataclass with exactly the run settings and that architecture's.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facegen.errors import FacegenError
from facegen.models import Architecture, get_architecture, trainable_architectures
from facegen.models.architecture import is_whole_number, require_whole_numbers_above_zero

# Runs started before each architecture had its own settings stored every architecture's settings in config.json.
# Those their architecture lacks never had an effect; resuming such a run drops them.
FORMERLY_SHARED_SETTINGS = frozenset(
    {"generator_channels", "discriminator_channels", "fmap_base", "fmap_max", "start_resolution", "phase_steps",
     "n_critic", "gp_weight", "drift_weight"}
)  # fmt: skip


class ConfigError(FacegenError):
    """A training setting that cannot work, named with the fix."""


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """The settings of a run, whatever it trains; `config_class` adds the architecture's."""

    arch: str
    data: str
    steps: int
    out: str = ""
    batch: int = 64
    seed: int = 0
    deterministic: bool = False
    mirror: bool = True  # random horizontal flips of the training images
    log_every: int = 10
    sample_every: int = 100
    checkpoint_every: int = 100
    keep_checkpoints: int = 3  # newest checkpoints kept besides the ones the user marks
    sample_count: int = 16  # the fixed latent batch: seeds 0..sample_count-1, as `facegen sample` draws them
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    amp: bool = True  # bfloat16 autocast where the hardware computes bfloat16 (GPUs, CPUs with AVX512-BF16 / AMX)
    channels_last: bool = True  # NHWC memory layout
    cache_dir: str | None = None  # where the decoded dataset is cached; None: facegen's cache

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


@functools.cache
def config_class(architecture: Architecture) -> type[TrainConfig]:
    """The run settings plus `architecture`'s training settings, as one frozen dataclass."""
    if architecture.training is None:
        raise ValueError(f"{architecture.name} is not trained by facegen")
    settings_class = architecture.training.settings_class
    # the settings class first, so its methods win; the run settings' fields still come first in config.json
    return dataclasses.make_dataclass(
        f"{settings_class.__name__}Config", (), bases=(settings_class, TrainConfig), frozen=True, kw_only=True
    )


def field_names(architecture: Architecture) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(config_class(architecture)))


def trained_architecture(name: Any) -> Architecture:
    """The description of the trainable architecture `name`; ConfigError naming the choices otherwise."""
    trainable = trainable_architectures()
    for architecture in trainable:
        if architecture.name == name:
            return architecture
    choices = ", ".join(architecture.name for architecture in trainable)
    try:
        get_architecture(name)
    except ValueError:
        raise ConfigError(f"Unknown architecture {name!r}. Choose one of: {choices}.") from None
    raise ConfigError(f"facegen runs pretrained {name} networks but does not train them. Choose one of: {choices}.")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a .json or .toml file whose keys are the settings' names (dashes allowed for underscores)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"Cannot read config file {path}: {error.strerror}. Check the path.") from None
    try:
        values = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise ConfigError(f"Config file {path} is not valid {kind} ({error}). Fix the syntax.") from None
    if not isinstance(values, dict):
        raise ConfigError(f"Config file {path} must hold one object of settings, e.g. {{\"arch\": \"dcgan\"}}.")
    return {key.replace("-", "_"): value for key, value in values.items()}


def resolve_config(settings: dict[str, Any]) -> TrainConfig:
    """Fill the architecture's defaults into `settings` and check every value; raises ConfigError naming the fix.

    A setting given as None takes its default.
    """
    if settings.get("arch") in (None, ""):
        raise ConfigError("Missing setting 'arch': give --arch (or 'arch' in the config file).")
    architecture = trained_architecture(settings["arch"])
    known = field_names(architecture)
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ConfigError(
            f"Unknown setting(s) {', '.join(unknown)} for {architecture.name}. Its settings: {', '.join(known)}."
        )
    for required in ("data", "steps"):
        if settings.get(required) in (None, ""):
            raise ConfigError(f"Missing setting '{required}': give --{required} (or '{required}' in the config file).")
    config = config_class(architecture)(**{name: value for name, value in settings.items() if value is not None})
    check_config(config, architecture)
    return config


def resolve_run_config(stored: dict[str, Any]) -> TrainConfig:
    """`resolve_config` for a run's own config.json, including those of runs that stored every architecture's
    settings (FORMERLY_SHARED_SETTINGS)."""
    known = field_names(trained_architecture(stored.get("arch")))
    return resolve_config(
        {name: value for name, value in stored.items() if name in known or name not in FORMERLY_SHARED_SETTINGS}
    )


def check_config(config: TrainConfig, architecture: Architecture) -> None:
    try:
        require_whole_numbers_above_zero(config, "steps", "batch", "log_every", "sample_every", "checkpoint_every", "sample_count")
        if not (is_whole_number(config.seed) and config.seed >= 0):
            raise ValueError(f"seed must be a whole number >= 0, not {config.seed!r}.")
        if not (is_whole_number(config.keep_checkpoints) and config.keep_checkpoints >= 1):
            raise ValueError(
                "keep_checkpoints must be at least 1 (the newest checkpoint is what --resume needs), not "
                f"{config.keep_checkpoints!r}."
            )
        check_resolution(config.resolution, architecture)
        config.check()
    except ValueError as error:
        raise ConfigError(str(error)) from None


def check_resolution(resolution: Any, architecture: Architecture) -> None:
    resolutions = architecture.training.resolutions
    if resolution in resolutions:
        return
    choices = str(resolutions[0]) if len(resolutions) == 1 else f"{', '.join(map(str, resolutions[:-1]))} or {resolutions[-1]}"
    larger = [
        other.name
        for other in trainable_architectures()
        if is_whole_number(resolution) and max(other.training.resolutions) >= resolution > max(resolutions)
    ]
    suggestion = f", or train larger faces with --arch {' or '.join(larger)}" if larger else ""
    raise ValueError(
        f"{architecture.name} trains at {choices} pixels, not {resolution!r}. Use --resolution with one of "
        f"those{suggestion}."
    )
