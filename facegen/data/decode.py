"""Decoding one raw image for training: upright, 8-bit RGB, centre-cropped to a square, resized to the resolution."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from facegen.data.sources import RawImage
from facegen.errors import ImageTooLargeError

# An image whose shorter side is below resolution * MIN_SIDE_FRACTION would be upscaled more than 2x, which
# teaches the GAN blur; it is skipped as 'too small'. The demo sets are exempt: they are upscaled on purpose.
MIN_SIDE_FRACTION = 0.5
# Transparent pixels are composited onto white, the background a viewer shows for them.
ALPHA_BACKGROUND = (255, 255, 255)
EXIF_ORIENTATION = 0x0112


@dataclass
class Decoded:
    pixels: np.ndarray | None = None  # uint8 [R, R, 3]
    skip_reason: str | None = None
    conversion: str | None = None
    enlarged: bool = False  # smaller than the resolution: the pixels hold less detail than their size suggests


def decode_image(raw: RawImage, resolution: int, upscale_small: bool) -> Decoded:
    if raw.open is None:
        return Decoded(skip_reason="missing")
    # Any exception from a decoder means the file is unusable; PIL and its plugins raise a dozen different types
    # (OSError, SyntaxError, ValueError, struct.error, zlib.error, ...) for damaged files.
    try:
        with raw.open() as image:
            if not upscale_small and min(image.size) < resolution * MIN_SIDE_FRACTION:
                return Decoded(skip_reason="too small")
            if image.format == "JPEG":
                # Let the JPEG decoder downscale by 2/4/8 in the DCT domain, keeping at least twice the target size
                # so the final filter still has detail to work with: several times faster on large photos.
                image.draft(image.mode, (2 * resolution, 2 * resolution))
            image.load()
            rgb, conversion = _to_rgb(_upright(image))
            enlarged = min(image.size) < resolution
            return Decoded(pixels=_crop_and_resize(rgb, resolution), conversion=conversion, enlarged=enlarged)
    except (Image.DecompressionBombError, ImageTooLargeError):
        return Decoded(skip_reason="too large")
    except Exception as error:
        # PIL says 'image file is truncated' for JPEG and PNG files cut short (an interrupted copy or download)
        return Decoded(skip_reason="truncated" if "truncated" in str(error).lower() else "corrupt")


def _upright(image: Image.Image) -> Image.Image:
    # Phone photos are stored sideways with an EXIF orientation tag; a face dataset wants them the way they look.
    if image.getexif().get(EXIF_ORIENTATION, 1) == 1:
        return image
    return ImageOps.exif_transpose(image)


def _to_rgb(image: Image.Image) -> tuple[Image.Image, str | None]:
    """An 8-bit RGB copy of `image`, and the name of the conversion a user would care about (None: it was RGB)."""
    mode = image.mode
    if mode == "RGB":
        return image, None
    if mode in ("1", "L"):
        return image.convert("RGB"), "grayscale"
    if mode.startswith("I"):
        # 16-bit grayscale (PNG, TIFF): PIL's own conversion clips at 255 and would turn the picture white;
        # dividing by 257 maps 0..65535 onto 0..255 exactly
        wide = np.asarray(image, dtype=np.float64)
        eight_bit = np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(eight_bit).convert("RGB"), "16-bit"
    if mode == "CMYK":
        return image.convert("RGB"), "cmyk"
    if mode == "P":
        if "transparency" in image.info:
            return _flatten_alpha(image.convert("RGBA")), "palette"
        return image.convert("RGB"), "palette"
    if mode in ("RGBA", "RGBa"):
        return _flatten_alpha(image.convert("RGBA")), "rgba"
    if mode in ("LA", "La", "PA"):
        return _flatten_alpha(image.convert("RGBA")), "grayscale"
    return image.convert("RGB"), mode.lower()


def _flatten_alpha(image: Image.Image) -> Image.Image:
    background = Image.new("RGB", image.size, ALPHA_BACKGROUND)
    background.paste(image, mask=image.getchannel("A"))
    return background


def _crop_and_resize(image: Image.Image, resolution: int) -> np.ndarray:
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    # crop first: resizing with a box would let the filter reach past the crop and bleed the sides in
    square = image.crop((left, top, left + side, top + side))
    if side == resolution:
        return np.asarray(square)
    # reducing_gap: shrink by an integer factor first (box filter) while staying 3x above the target, then
    # Lanczos; as sharp as Lanczos alone on large inputs, and much faster
    return np.asarray(square.resize((resolution, resolution), Image.Resampling.LANCZOS, reducing_gap=3.0))
