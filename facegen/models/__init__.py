"""Architectures, one per file. No file I/O here: loading weights lives in facegen.formats.

Every generator is an `nn.Module` built from one config dataclass. `GENERATOR_ARCHITECTURES` names them so
checkpoints can record an architecture by name and rebuild it from its JSON config.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from torch import nn

# architecture name -> (module, config class, generator class); imported lazily so a page loads only what it uses
GENERATOR_ARCHITECTURES: dict[str, tuple[str, str, str]] = {
    "dcgan": ("facegen.models.dcgan", "DCGANConfig", "DCGANGenerator"),
    "cdcgan": ("facegen.models.cdcgan", "CDCGANConfig", "CDCGANGenerator"),
    "progan": ("facegen.models.progan", "ProGANConfig", "ProGANGenerator"),
    "stylegan2": ("facegen.models.stylegan2", "StyleGAN2Config", "StyleGAN2Generator"),
    "stylegan3": ("facegen.models.stylegan3", "StyleGAN3Config", "StyleGAN3Generator"),
    "progan-facebook": ("facegen.models.progan_facebook", "FacebookProGANConfig", "FacebookProGANGenerator"),
}


def architecture_classes(architecture: str) -> tuple[type, type[nn.Module]]:
    try:
        module_name, config_name, generator_name = GENERATOR_ARCHITECTURES[architecture]
    except KeyError:
        known = ", ".join(sorted(GENERATOR_ARCHITECTURES))
        raise ValueError(f"unknown architecture {architecture!r}; known: {known}") from None
    module = importlib.import_module(module_name)
    return getattr(module, config_name), getattr(module, generator_name)


def config_from_dict(architecture: str, values: dict[str, Any]) -> Any:
    config_class, _ = architecture_classes(architecture)
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    kwargs = {}
    for name, value in values.items():
        if name in fields:
            kwargs[name] = tuple(value) if isinstance(value, list) else value
    return config_class(**kwargs)


def build_generator(architecture: str, config: Any) -> nn.Module:
    _, generator_class = architecture_classes(architecture)
    return generator_class(config)


def architecture_of(network: nn.Module) -> str:
    """The GENERATOR_ARCHITECTURES name whose generator class built `network`."""
    for name, (module_name, _, class_name) in GENERATOR_ARCHITECTURES.items():
        if type(network).__module__ == module_name and type(network).__name__ == class_name:
            return name
    raise ValueError(f"{type(network).__qualname__} is not a registered generator architecture")
