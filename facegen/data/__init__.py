"""Training datasets: image folders, zips, CelebA, Hugging Face dataset repos, and two offline demo sets.

A source is decoded once -- converted to RGB, centre-cropped to a square, resized to the training resolution --
into a uint8 `.npy` cache that later opens memory-map, so the second epoch (and the second run) reads no JPEG.
Images that cannot be used are skipped and counted, images in other colour modes are converted and counted;
`DatasetReport` tells the user both.

Sources (`open_dataset`'s `source` argument):
    a folder            every image file below it, recursively (hidden files and `__MACOSX/` ignored)
    a .zip              the same inside the archive, e.g. `processed-celeba-small.zip`
    a CelebA root       a folder or zip holding `list_attr_celeba.txt` (or Kaggle's `.csv`) and `img_align_celeba/`:
                        images in the attribute file's order, with its 40 binary attributes
    hf:OWNER/NAME[@REV] a Hugging Face dataset repo: image files, or parquet files with an image column (and the
                        CelebA attribute columns when present)
    demo:lfw            100 LFW face crops shipped with scikit-image (no download)
    demo:digiface?n=N   N synthetic faces rendered by the pretrained `digiface-dcgan64` generator
    demo:digiface-reference?n=N   N more from seeds no metric draws: a colour reference for FID/KID

Modules: `sources` (folders, zips, CelebA, parquet), `hugging_face`, `demo`, `decode` (one image), `cache` (the
decoded-image cache and `FaceDataset`), `report` (what the user is told).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facegen.data.cache import FaceDataset, default_cache_dir, open_cached, to_unit_range
from facegen.data.demo import DEMO_DATASETS, ModelLoader, demo_source, use_model_loader
from facegen.data.hugging_face import hf_source
from facegen.data.report import DatasetError, DatasetReport
from facegen.data.sources import CELEBA_ATTRIBUTE_NAMES, Source, path_source

__all__ = [
    "CELEBA_ATTRIBUTE_NAMES",
    "DEMO_DATASETS",
    "DatasetError",
    "DatasetReport",
    "FaceDataset",
    "ModelLoader",
    "Source",
    "default_cache_dir",
    "find_source",
    "open_dataset",
    "to_unit_range",
    "use_model_loader",
]

RESOLUTION_RANGE = (4, 2048)


def open_dataset(
    source: str, resolution: int, cache_dir: str | Path | None = None, progress: bool = True
) -> FaceDataset:
    """Open `source` at `resolution`, decoding it into the cache the first time (see the module docstring)."""
    resolution = _check_resolution(resolution)  # before a source is downloaded or listed
    return open_cached(_resolve_source(source), resolution, cache_dir, progress)


def find_source(source: str) -> Source:
    """The dataset `source` names, found and listed but not decoded: raises DatasetError when it cannot be used
    (no such path, no images, an hf: repo that cannot be had). Cheap for local sources; an hf: repo is downloaded."""
    return _resolve_source(source)


def _check_resolution(resolution: int) -> int:
    low, high = RESOLUTION_RANGE
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or not low <= resolution <= high:
        raise DatasetError(
            f"Resolution {resolution!r} is not usable: give a whole number of pixels, {low} to {high}."
        )
    return int(resolution)


def _resolve_source(source: str) -> Source:
    if source.startswith("hf:"):
        return hf_source(source[len("hf:") :])
    if source.startswith("demo:"):
        return demo_source(source[len("demo:") :])
    return path_source(source)
