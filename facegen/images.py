"""Image grids and PNG files that carry their recipe."""

from __future__ import annotations

import io
import json
import math
import os
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from facegen.errors import FacegenError, ImageTooLargeError
from facegen.limits import MAX_IMAGE_PIXELS

RECIPE_KEY = "facegen"
# PIL's own guard (a warning above the limit, an error above twice it) for any image opened without open_image
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def grid_columns(count: int) -> int:
    return max(1, math.ceil(math.sqrt(count)))


def make_grid(images: np.ndarray, columns: int | None = None, padding: int = 0) -> np.ndarray:
    """NHWC uint8 images to one HWC grid image, row by row, in the order given."""
    count, height, width, channels = images.shape
    columns = columns or grid_columns(count)
    rows = math.ceil(count / columns)
    grid = np.zeros(
        (rows * height + (rows - 1) * padding, columns * width + (columns - 1) * padding, channels), np.uint8
    )
    for index, image in enumerate(images):
        row, col = divmod(index, columns)
        top, left = row * (height + padding), col * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def grid_tile(grid: np.ndarray, index: int, tile_size: int, columns: int, padding: int = 0) -> np.ndarray:
    row, col = divmod(index, columns)
    top, left = row * (tile_size + padding), col * (tile_size + padding)
    return grid[top : top + tile_size, left : left + tile_size]


def png_bytes(image: np.ndarray, recipe: dict | None = None) -> bytes:
    """Encode an HWC uint8 image as PNG, with the recipe as a JSON text chunk."""
    info = PngImagePlugin.PngInfo()
    if recipe is not None:
        info.add_text(RECIPE_KEY, json.dumps(recipe, sort_keys=True))
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def open_image(source: str | Path | BinaryIO, name: str | None = None) -> Image.Image:
    """A user's image file opened lazily, refused from its header when decoding it would take too much memory.

    Use it as a context manager; pixels are decoded on the first access (`load`, `convert`, `np.asarray`).
    `name` is how errors name an upload (a file object has no path).
    """
    shown = name or (Path(source).name if isinstance(source, (str, Path)) else "the image")
    refusal = f"facegen opens images up to {MAX_IMAGE_PIXELS / 1e6:g} megapixels. Scale it down first."
    try:
        with warnings.catch_warnings():
            # the size is checked below, with a message that says what to do
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source)
    except Image.DecompressionBombError:
        # PIL refuses twice its MAX_IMAGE_PIXELS before telling the size
        raise ImageTooLargeError(f"{shown} has more than {2 * MAX_IMAGE_PIXELS / 1e6:g} megapixels; {refusal}") from None
    except UnidentifiedImageError:  # PIL's message names a file object by its repr: say it in words instead
        raise FacegenError(
            f"{shown} is not an image facegen can read (an unknown format). Use a PNG or JPEG file."
        ) from None
    except OSError as error:
        raise FacegenError(f"{shown} is not an image facegen can read ({error}). Use a PNG or JPEG file.") from None
    if image.width * image.height > MAX_IMAGE_PIXELS:
        image.close()
        raise ImageTooLargeError(f"{shown} is {image.width}x{image.height} pixels; {refusal}")
    return image


def read_recipe(source: str | Path | BinaryIO, name: str | None = None) -> dict | None:
    """The recipe a facegen PNG carries (None: none); `name` is how errors name an upload."""
    with open_image(source, name) as image:
        text = image.text.get(RECIPE_KEY) if hasattr(image, "text") else None
    return json.loads(text) if text else None


def check_writable_dir(directory: Path) -> None:
    """Create `directory` if needed and fail early, before any rendering, when it cannot be written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FacegenError(f"Cannot create output folder {directory}: {error.strerror}. Choose another --out.") from None
    if not os.access(directory, os.W_OK):
        raise FacegenError(f"Output folder {directory} is not writable. Choose another --out or fix its permissions.")


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary sibling and rename, so a reader never sees a half-written file.

    The temporary name is unique to this write, so two writers never write into one temporary file.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise FacegenError(f"Cannot write {path}: {error.strerror}. Choose another output path.") from None


def is_directory_target(out: str | Path) -> bool:
    text = str(out)
    return text.endswith(("/", os.sep)) or (Path(text).is_dir() and not text.lower().endswith(".png"))


def check_output_target(out: str | Path) -> None:
    """Fail before any rendering when OUT is neither a .png path nor a folder, or cannot be written."""
    if is_directory_target(out):
        check_writable_dir(Path(out))
        return
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise FacegenError(f"Output {str(out)!r} must end in .png (one grid) or / (one PNG per seed).")
    check_writable_dir(path.parent)


def save_images(
    images: np.ndarray, out: str | Path, seeds: Sequence[int] | None, recipe: dict, columns: int | None = None
) -> list[Path]:
    """Write images as one grid (OUT ends in .png) or one PNG per seed (OUT ends in /). Returns written paths."""
    check_output_target(out)
    if is_directory_target(out):
        directory = Path(out)
        names = [f"seed{seed:04d}.png" for seed in seeds] if seeds else [f"image{i:04d}.png" for i in range(len(images))]
        written = []
        for index, (name, image) in enumerate(zip(names, images)):
            single = dict(recipe, seeds=[seeds[index]] if seeds else None)
            write_atomically(directory / name, png_bytes(image, single))
            written.append(directory / name)
        return written
    path = Path(out)
    columns = columns or grid_columns(len(images))
    write_atomically(path, png_bytes(make_grid(images, columns), dict(recipe, grid_columns=columns)))
    return [path]


RESAMPLE_FILTERS = {"lanczos": Image.LANCZOS, "nearest": Image.NEAREST}


def resize_image(image: np.ndarray, size: tuple[int, int], resample: str = "lanczos") -> np.ndarray:
    """An HWC uint8 image at (width, height); 'nearest' keeps pixel edges crisp, 'lanczos' smooths them."""
    if resample not in RESAMPLE_FILTERS:
        raise FacegenError(f"Unknown resize filter {resample!r}. Choose one of: {', '.join(RESAMPLE_FILTERS)}.")
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize(tuple(size), RESAMPLE_FILTERS[resample]))
