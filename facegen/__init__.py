"""facegen: train face GANs, load NVIDIA's pretrained generators safely, render faces and clips."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facegen.errors import FacegenError

if TYPE_CHECKING:
    from facegen.generator import Generator, ModelInfo

__all__ = ["FacegenError", "Generator", "ModelInfo"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # The Generator is made of torch, which `python -m facegen --help` and a mistyped option should not wait for.
    if name in ("Generator", "ModelInfo"):
        from facegen import generator

        return getattr(generator, name)
    raise AttributeError(f"module 'facegen' has no attribute {name!r}")
