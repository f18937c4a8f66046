"""facegen: train face GANs, load NVIDIA's pretrained generators safely, render faces and clips."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

# torch's CPU allocator puts tensors of 2 MB and more on transparent huge pages when this is set (it reads it once,
# at its first allocation, so it must come before torch is imported). Every large fresh tensor then faults its
# memory in 2 MB at a time instead of 4 kB, which is much of the CPU time of StyleGAN's large activations.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from facegen.errors import FacegenError  # noqa: E402

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
