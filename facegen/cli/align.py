"""`facegen align`: the face in a photo, aligned as FFHQ was aligned, to a PNG that records its source."""

from __future__ import annotations

import argparse
from pathlib import Path

from facegen.errors import FacegenError
from facegen.faces.align import find_and_align
from facegen.faces.photo import read_photo
from facegen.images import check_writable_dir, png_bytes, write_atomically


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="the photo")
    parser.add_argument("--size", type=int, default=256, help="output size in pixels (default 256)")
    parser.add_argument("--face", type=int, help="which face, largest first (default 0: the largest)")
    parser.add_argument("--out", required=True, help="output .png")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise FacegenError(f"Output {args.out!r} must end in .png.")
    check_writable_dir(out.parent)
    photo = read_photo(args.image)
    aligned = find_and_align(photo, args.size, args.face, photo_name=Path(args.image).name)
    recipe = {"format": "facegen-aligned", "source": aligned.source(Path(args.image).name)}
    write_atomically(out, png_bytes(aligned.image, recipe))
    print(out)
    return 0
