"""What facegen knows about an architecture, in one description that its model file defines beside the networks.

The CLI, the Training page, the training loop and the checkpoint loader read these descriptions instead of
keeping their own tables. Training code lives above this package (`facegen.train`), so a description names its
trainer as a "module:function" string that only the training layer imports.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True, kw_only=True)
class TrainingSettings:
    """The settings every trained architecture has; each architecture's subclass adds its own and sets the
    defaults its paper uses."""

    resolution: int  # the size the run trains at (ProGAN: where growing stops)
    z_dim: int
    lr: float  # Adam, for generator and discriminator alike
    beta1: float
    beta2: float
    ema_decay: float = 0.0  # the generator's moving average; 0 turns it off

    def check(self) -> None:
        """Raise ValueError naming the fix for the first setting that cannot work; subclasses check their own
        settings after calling this."""
        require_whole_numbers_above_zero(self, "z_dim")
        if not is_number(self.lr) or self.lr <= 0:
            raise ValueError(f"lr must be a positive number, not {self.lr!r}.")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not is_number(value) or not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), not {value!r}.")
        if not is_number(self.ema_decay) or not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1) (0 turns the moving average off), not {self.ema_decay!r}.")


@dataclass(frozen=True)
class Training:
    """How facegen trains an architecture."""

    settings_class: type[TrainingSettings]  # a frozen, keyword-only dataclass; its defaults are the run's defaults
    # "module:function" building the trainer's parts: function(config, conditioning) -> facegen.train.gans.GANParts
    trainer: str
    resolutions: tuple[int, ...]  # the resolutions it trains at

    def __post_init__(self) -> None:
        params = getattr(self.settings_class, "__dataclass_params__", None)
        if params is None or not params.frozen or not issubclass(self.settings_class, TrainingSettings):
            raise TypeError(f"{self.settings_class.__name__} must be a frozen dataclass subclassing TrainingSettings")
        if ":" not in self.trainer:
            raise ValueError(f"trainer must be 'module:function', not {self.trainer!r}")

    def setting_defaults(self) -> dict[str, object]:
        return {
            field.name: field.default
            for field in dataclasses.fields(self.settings_class)
            if field.default is not dataclasses.MISSING
        }


@dataclass(frozen=True)
class Architecture:
    """One architecture: how checkpoints name it, how its generator is built, and how (whether) facegen trains it."""

    name: str  # what checkpoints record and `train --arch` takes
    title: str  # one line for pickers and help
    config_class: type  # the generator's config dataclass, stored in checkpoints as JSON
    generator_class: type[nn.Module]  # built as generator_class(config)
    training: Training | None = None  # None: facegen runs it (converted pretrained networks) but does not train it
    # the generator draws faces for given attribute labels, so training needs a data set that carries them
    is_conditional: bool = False
    # trained here, but its generator is another architecture's: checkpoints record that one, so every tool that
    # loads it loads these (WGAN-GP trains DCGAN's generator)
    saves_generator_as: str | None = None

    @property
    def checkpoint_architecture(self) -> str:
        """The architecture name checkpoints of this architecture's generator record."""
        return self.saves_generator_as or self.name

    @property
    def is_trainable(self) -> bool:
        return self.training is not None


def is_whole_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require_whole_numbers_above_zero(settings: object, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        if not is_whole_number(value) or value <= 0:
            raise ValueError(f"{name} must be a whole number above 0, not {value!r}.")
