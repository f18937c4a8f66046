"""Reading a user's photo safely: any format Pillow decodes, EXIF rotation applied, decompression bombs refused."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from facegen.errors import FacegenError

# Pillow's own limit: above it, Image.open warns (up to twice it) or raises. We refuse both: a photo that large is
# either a mistake or a file built to exhaust memory when decoded.
MAX_PHOTO_PIXELS = Image.MAX_IMAGE_PIXELS


def read_photo(source: str | Path | bytes | BinaryIO, name: str | None = None) -> np.ndarray:
    """A photo file (path, bytes or open file) as uint8 RGB [H, W, 3], upright as its EXIF orientation says."""
    shown = name or (str(source) if isinstance(source, (str, Path)) else "the uploaded file")
    if isinstance(source, (str, Path)) and not Path(source).expanduser().is_file():
        raise FacegenError(f"Photo {shown} does not exist. Check the path given to --image.")
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    if isinstance(handle, (str, Path)):
        handle = Path(handle).expanduser()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(handle) as image:
                image = ImageOps.exif_transpose(image).convert("RGB")
                return np.asarray(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FacegenError(
            f"{shown} declares more than {MAX_PHOTO_PIXELS:,} pixels: too large to decode safely. Use a smaller "
            "photo (a few megapixels is plenty for a face)."
        ) from None
    except Image.UnidentifiedImageError:
        raise FacegenError(f"{shown} is not an image facegen can read. Use a JPEG, PNG or WebP photo.") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise FacegenError(f"{shown} could not be decoded ({error}). The file may be truncated; try another copy.") from None
