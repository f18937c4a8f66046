"""Training settings: one dataclass, filled from defaults, a config file and the command line, then checked.

`resolve_config` turns a user's partial settings into a complete `TrainConfig` with every architecture default
written out, which the run directory stores as `config.json`, so a run always records what it actually did.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facegen.errors import FacegenError

ARCHITECTURES = ("dcgan", "wgan-gp", "progan", "cdcgan")
DCGAN_FAMILY = ("dcgan", "wgan-gp", "cdcgan")
DCGAN_RESOLUTIONS = (32, 64)
PROGAN_RESOLUTIONS = tuple(2**power for power in range(2, 9))  # 4 .. 256, the cap the app offers


class ConfigError(FacegenError):
    """A training setting that cannot work, named with the fix."""


@dataclass(frozen=True)
class TrainConfig:
    arch: str
    data: str
    steps: int
    out: str = ""
    batch: int = 64
    seed: int = 0
    deterministic: bool = False
    # None: the architecture's default, filled in by resolve_config
    resolution: int | None = None  # DCGAN family: 32 or 64; ProGAN: the final resolution (the growth cap)
    z_dim: int | None = None
    generator_channels: int = 64  # DCGAN family: ngf
    discriminator_channels: int = 64  # DCGAN family: ndf
    fmap_base: int = 8192  # ProGAN: features per stage are min(fmap_base / 2^stage, fmap_max)
    fmap_max: int = 512
    start_resolution: int | None = None  # ProGAN: where growing starts
    phase_steps: int | None = None  # ProGAN: steps per fade-in and per stable phase; None splits `steps` evenly
    lr: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    n_critic: int | None = None  # critic updates per generator update
    gp_weight: float = 10.0  # WGAN-GP lambda
    drift_weight: float = 0.001  # ProGAN eps_drift
    ema_decay: float | None = None  # generator moving average; 0 turns it off
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

    @property
    def batches_per_step(self) -> int:
        """Real batches one step (one generator update) consumes: one per critic update."""
        return self.n_critic or 1

    @property
    def uses_ema(self) -> bool:
        return bool(self.ema_decay)


ARCHITECTURE_DEFAULTS: dict[str, dict[str, Any]] = {
    # Radford et al. / the PyTorch DCGAN tutorial
    "dcgan": dict(resolution=64, z_dim=100, lr=2e-4, beta1=0.5, beta2=0.999, n_critic=1, ema_decay=0.0),
    "cdcgan": dict(resolution=64, z_dim=100, lr=2e-4, beta1=0.5, beta2=0.999, n_critic=1, ema_decay=0.0),
    # Gulrajani et al. 2017, algorithm 1
    "wgan-gp": dict(resolution=64, z_dim=100, lr=1e-4, beta1=0.0, beta2=0.9, n_critic=5, ema_decay=0.0),
    # Karras et al. 2018 / NVIDIA's config.py
    "progan": dict(resolution=256, z_dim=512, lr=1e-3, beta1=0.0, beta2=0.99, n_critic=1, ema_decay=0.999, start_resolution=16),
}


def field_names() -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(TrainConfig))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a .json or .toml file whose keys are TrainConfig's fields (dashes allowed for underscores)."""
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
    """Fill architecture defaults into `settings` and check every value; raises ConfigError naming the fix."""
    unknown = sorted(set(settings) - set(field_names()))
    if unknown:
        raise ConfigError(f"Unknown setting(s) {', '.join(unknown)}. Known settings: {', '.join(field_names())}.")
    for required in ("arch", "data", "steps"):
        if settings.get(required) in (None, ""):
            raise ConfigError(f"Missing setting '{required}': give --{required} (or '{required}' in the config file).")
    arch = settings["arch"]
    if arch not in ARCHITECTURES:
        raise ConfigError(f"Unknown architecture {arch!r}. Choose one of: {', '.join(ARCHITECTURES)}.")
    values = dict(settings)
    for name, default in ARCHITECTURE_DEFAULTS[arch].items():
        if values.get(name) is None:
            values[name] = default
    if arch == "progan" and settings.get("start_resolution") is None and isinstance(values["resolution"], int):
        values["start_resolution"] = min(values["start_resolution"], values["resolution"])
    config = TrainConfig(**values)
    check_config(config)
    return config


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_config(config: TrainConfig) -> None:
    for name in ("steps", "batch", "log_every", "sample_every", "checkpoint_every", "sample_count", "n_critic"):
        value = getattr(config, name)
        _require(_is_int(value) and value > 0, f"{name} must be a whole number above 0, not {value!r}.")
    _require(_is_int(config.seed) and config.seed >= 0, f"seed must be a whole number >= 0, not {config.seed!r}.")
    _require(
        _is_int(config.keep_checkpoints) and config.keep_checkpoints >= 1,
        f"keep_checkpoints must be at least 1 (the newest checkpoint is what --resume needs), not {config.keep_checkpoints!r}.",
    )
    _require(isinstance(config.lr, (int, float)) and config.lr > 0, f"lr must be a positive number, not {config.lr!r}.")
    for name in ("beta1", "beta2"):
        value = getattr(config, name)
        _require(isinstance(value, (int, float)) and 0 <= value < 1, f"{name} must be in [0, 1), not {value!r}.")
    _require(
        isinstance(config.ema_decay, (int, float)) and 0 <= config.ema_decay < 1,
        f"ema_decay must be in [0, 1) (0 turns the moving average off), not {config.ema_decay!r}.",
    )
    _require(_is_int(config.z_dim) and config.z_dim > 0, f"z_dim must be a whole number above 0, not {config.z_dim!r}.")
    if config.arch in DCGAN_FAMILY:
        _require(
            config.resolution in DCGAN_RESOLUTIONS,
            f"{config.arch} trains at 32 or 64 pixels, not {config.resolution!r}. Use --resolution 64 (or 32), or "
            "--arch progan for larger faces.",
        )
        for name in ("generator_channels", "discriminator_channels"):
            value = getattr(config, name)
            _require(_is_int(value) and value > 0, f"{name} must be a whole number above 0, not {value!r}.")
    if config.arch == "progan":
        allowed = ", ".join(map(str, PROGAN_RESOLUTIONS))
        _require(
            config.resolution in PROGAN_RESOLUTIONS,
            f"ProGAN's final resolution must be one of {allowed}, not {config.resolution!r}.",
        )
        _require(
            config.start_resolution in PROGAN_RESOLUTIONS and config.start_resolution <= config.resolution,
            f"ProGAN's start_resolution must be one of {allowed} and at most resolution ({config.resolution}), "
            f"not {config.start_resolution!r}.",
        )
        _require(
            config.phase_steps is None or (_is_int(config.phase_steps) and config.phase_steps > 0),
            f"phase_steps must be a whole number above 0 (or unset to split the steps evenly), not {config.phase_steps!r}.",
        )
        _require(
            _is_int(config.fmap_base) and _is_int(config.fmap_max) and config.fmap_base > 0 and config.fmap_max > 0,
            "fmap_base and fmap_max must be whole numbers above 0.",
        )
