"""Dataset decoding and batching speed, each beside its baseline in the same run.

    python bench/data.py [--images 400] [--resolution 64]

Figures:
  decode   facegen's decode (JPEG draft + Lanczos with reducing_gap) vs a plain one (full-size decode, convert,
           crop, Lanczos), images/s, on CelebA-sized 178x218 JPEGs and on FFHQ-sized 1024x1024 ones
  workers  the same decode spread over 2 processes vs 1: decides whether open_dataset uses a process pool
  reopen   the second open (memory-mapped cache) vs the first
  batch    FaceDataset.batch() with a flip mask vs a DataLoader over __getitem__ (default collate), images/s
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from functools import partial
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import best_seconds  # noqa: E402
from facegen import data  # noqa: E402
from facegen.data.decode import decode_image  # noqa: E402
from facegen.data.sources import RawImage  # noqa: E402


def write_photo_like_jpegs(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """Smooth random pictures, so JPEG sizes and decode costs resemble photos."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        coarse = rng.integers(0, 256, (14, 12, 3), dtype=np.uint8)
        picture = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        path = folder / f"{index:06d}.jpg"
        picture.save(path, quality=90)
        paths.append(path)
    return paths


def plain_decode(path: Path, resolution: int) -> np.ndarray:
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    side = min(rgb.size)
    left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
    square = rgb.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((resolution, resolution), Image.Resampling.LANCZOS))


def facegen_decode(path: Path, resolution: int) -> np.ndarray:
    raw = RawImage(path.name, lambda: Image.open(path))
    return decode_image(raw, resolution, upscale_small=False).pixels


def decode_all(paths: list[Path], resolution: int) -> list[np.ndarray]:
    return [facegen_decode(path, resolution) for path in paths]


def show(figure: str, baseline: str, baseline_rate: float, ours: str, our_rate: float, unit: str) -> None:
    print(
        f"{figure:18s} {baseline} {baseline_rate:10.1f} {unit}   {ours} {our_rate:10.1f} {unit}   "
        f"ratio {our_rate / baseline_rate:6.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--resolution", type=int, default=64)
    args = parser.parse_args()
    count, resolution = args.images, args.resolution
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "celeba"
        paths = write_photo_like_jpegs(folder, count, 178, 218)
        large = write_photo_like_jpegs(Path(scratch) / "ffhq", max(1, count // 8), 1024, 1024)
        for name, sample in (("178x218", paths), ("1024x1024", large)):
            plain = best_seconds(lambda: [plain_decode(path, resolution) for path in sample], repeats=3)
            ours = best_seconds(lambda: [facegen_decode(path, resolution) for path in sample], repeats=3)
            show(f"decode {name}", "plain", len(sample) / plain, "facegen", len(sample) / ours, "img/s")
        one_process = partial(decode_all, resolution=resolution)
        ours = best_seconds(lambda: one_process(paths), repeats=3)

        halves = [paths[: count // 2], paths[count // 2 :]]
        with Pool(2) as pool:
            pool.map(one_process, halves)  # start-up and imports outside the timing
            two = best_seconds(lambda: pool.map(one_process, halves), repeats=3)
        show("workers", "1 process", count / ours, "2 processes", count / two, "img/s")

        cache = Path(scratch) / "cache"
        start = time.perf_counter()
        dataset = data.open_dataset(str(folder), resolution, cache_dir=cache, progress=False)
        first = time.perf_counter() - start
        second = best_seconds(lambda: data.open_dataset(str(folder), resolution, cache_dir=cache, progress=False))
        print(f"{'reopen':18s} first open {first:8.3f} s   second open {second:8.4f} s   ratio {first / second:6.0f}x")

        batch_size = min(128, len(dataset))
        generator = torch.Generator().manual_seed(0)

        def fast_batch() -> None:
            indices = torch.randint(len(dataset), (batch_size,), generator=generator)
            dataset.batch(indices, torch.rand(batch_size, generator=generator) < 0.5)

        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)
        dataset.flip_probability = 0.5
        loader_seconds = best_seconds(lambda: next(iter(loader)), repeats=10)
        batch_seconds = best_seconds(fast_batch, repeats=10)
        show("batch", "DataLoader", batch_size / loader_seconds, "batch()", batch_size / batch_seconds, "img/s")


if __name__ == "__main__":
    main()
