"""Architectures, one per file. No file I/O here: loading weights lives in facegen.formats.

Every model file defines `ARCHITECTURE`, the description (`facegen.models.architecture.Architecture`) that the CLI,
the Training page, the training loop and the checkpoint loader read. Checkpoints record an architecture by name
and rebuild its generator from its JSON config.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from torch import nn

from facegen.models.architecture import Architecture, Training, TrainingSettings

# architecture name -> the module defining its ARCHITECTURE, imported on first use so a command or page loads only
# the architectures it uses. Trained ones first, in the order `train --arch` lists them.
TRAINED_ARCHITECTURE_MODULES: dict[str, str] = {
    "dcgan": "facegen.models.dcgan",
    "wgan-gp": "facegen.models.wgan_gp",
    "progan": "facegen.models.progan",
    "cdcgan": "facegen.models.cdcgan",
}
PRETRAINED_ARCHITECTURE_MODULES: dict[str, str] = {
    "stylegan2": "facegen.models.stylegan2",
    "stylegan3": "facegen.models.stylegan3",
    "progan-facebook": "facegen.models.progan_facebook",
}
# descriptions registered at run time (`register`), e.g. by a test or a plugin
_registered: dict[str, Architecture] = {}

__all__ = ["Architecture", "Training", "TrainingSettings"]


def register(architecture: Architecture) -> None:
    """Make `architecture` known by its name, as if its module were listed above."""
    _registered[architecture.name] = architecture


def unregister(name: str) -> None:
    _registered.pop(name, None)


def _module_of(name: str) -> str | None:
    return TRAINED_ARCHITECTURE_MODULES.get(name) or PRETRAINED_ARCHITECTURE_MODULES.get(name)


def architecture_names() -> tuple[str, ...]:
    return (*TRAINED_ARCHITECTURE_MODULES, *PRETRAINED_ARCHITECTURE_MODULES, *_registered)


def get_architecture(name: str) -> Architecture:
    """The description of architecture `name`; ValueError when there is none."""
    if name in _registered:
        return _registered[name]
    module_name = _module_of(name)
    if module_name is None:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(sorted(architecture_names()))}")
    architecture = importlib.import_module(module_name).ARCHITECTURE
    if architecture.name != name:
        raise ValueError(f"{module_name} describes {architecture.name!r}, not {name!r}")
    return architecture


def trainable_architectures() -> tuple[Architecture, ...]:
    """The architectures facegen trains, in the order pickers offer them; imports no inference-only model."""
    names = (*TRAINED_ARCHITECTURE_MODULES, *(name for name, known in _registered.items() if known.is_trainable))
    return tuple(get_architecture(name) for name in names)


def all_architectures() -> tuple[Architecture, ...]:
    return tuple(get_architecture(name) for name in architecture_names())


def architecture_of(network: nn.Module) -> str:
    """The registered architecture name whose generator class built `network` (what its checkpoint records)."""
    for architecture in all_architectures():
        if type(network) is architecture.generator_class and architecture.saves_generator_as is None:
            return architecture.name
    raise ValueError(f"{type(network).__qualname__} is not a registered generator architecture")


def config_from_dict(architecture: str, values: dict[str, Any]) -> Any:
    """The generator config a checkpoint's JSON describes; keys the config class lacks are ignored."""
    config_class = get_architecture(architecture).config_class
    fields = {field.name for field in dataclasses.fields(config_class)}
    kwargs = {name: tuple(value) if isinstance(value, list) else value for name, value in values.items() if name in fields}
    return config_class(**kwargs)


def build_generator(architecture: str, config: Any) -> nn.Module:
    return get_architecture(architecture).generator_class(config)
