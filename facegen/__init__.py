"""facegen: train face GANs, load NVIDIA's pretrained generators safely, render faces and clips."""

from facegen.errors import FacegenError
from facegen.generator import Generator, ModelInfo

__all__ = ["FacegenError", "Generator", "ModelInfo"]
__version__ = "0.1.0"
