"""The decoded-image cache: one folder per source and resolution holding uint8 `.npy` rows that open memory-mapped.

A folder is named after the source and a hash of its identity, resolution and CACHE_FORMAT_VERSION; `meta.json`,
written last, marks it complete, so an interrupted decode is never mistaken for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facegen.data.decode import MIN_SIDE_FRACTION, decode_image
from facegen.data.report import DatasetError, DatasetReport
from facegen.data.sources import Source
from facegen.hub import cache_root

# Bump when decoding changes what ends up in the cache (filters, crop, conversions): old caches are then ignored.
CACHE_FORMAT_VERSION = 2
SKIPPED_EXAMPLES_KEPT = 3


class FaceDataset(torch.utils.data.Dataset):
    """Decoded training images: uint8 [N, 3, R, R] memory-mapped from the cache, plus optional attributes."""

    def __init__(
        self,
        images: torch.Tensor,
        attributes: torch.Tensor | None,
        attribute_names: tuple[str, ...],
        report: DatasetReport,
        cache_entry: Path | None = None,
    ) -> None:
        self.images = images
        self.attributes = attributes
        self.attribute_names = attribute_names
        self.report = report
        self.resolution = int(images.shape[-1])
        # chance that __getitem__ mirrors an image; the training loop's fast path passes its own mask to batch()
        self.flip_probability = 0.0
        self._cache_entry = cache_entry

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = to_unit_range(self.images[index])
        if self.flip_probability and torch.rand(()) < self.flip_probability:
            image = image.flip(-1)
        attributes = self.attributes[index] if self.attributes is not None else torch.empty(0)
        return image, attributes

    def batch(
        self, indices: torch.Tensor, flip: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 images [B, 3, R, R] for `indices`, mirrored where the bool mask `flip` is true.

        They stay uint8, a quarter of float32's bytes, until they reach the device that trains on them, which
        converts them with `to_unit_range`.
        """
        pixels = self.images[indices]  # a fresh copy, so mirroring in place leaves the cache untouched
        if flip is not None:
            pixels[flip] = pixels[flip].flip(-1)
        attributes = self.attributes[indices] if self.attributes is not None else None
        return pixels, attributes

    # DataLoader workers started by 'spawn' (macOS, Windows) pickle the dataset: send the cache's location, not
    # gigabytes of pixels, and memory-map it again on the other side.
    def __getstate__(self) -> dict:
        if self._cache_entry is None:
            return self.__dict__
        return {"cache_entry": self._cache_entry, "flip_probability": self.flip_probability}

    def __setstate__(self, state: dict) -> None:
        if "cache_entry" not in state:
            self.__dict__.update(state)
            return
        reopened = _read_cache(state["cache_entry"])
        if reopened is None:
            raise DatasetError(f"The dataset cache {state['cache_entry']} vanished; open the dataset again.")
        self.__dict__.update(reopened.__dict__)
        self.flip_probability = state["flip_probability"]


def to_unit_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [-1, 1], on the device they are on."""
    # u / 127.5 - 1 is exactly inverted by generator.images_to_uint8's truncating x * 127.5 + 128
    return pixels.float().div_(127.5).sub_(1.0)


def default_cache_dir() -> Path:
    return cache_root() / "datasets"


def open_cached(source: Source, resolution: int, cache_dir: str | Path | None, progress: bool) -> FaceDataset:
    """`source` at `resolution` from its cache entry, decoding it into the entry first when there is none."""
    key = _cache_key(source.identity, resolution)
    entry = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    entry = entry / f"{_slug(source.label)}-{resolution}px-{key[:16]}"
    dataset = _read_cache(entry, key)
    if dataset is None:
        _decode_into_cache(source, resolution, entry, key, progress)
        dataset = _read_cache(entry, key)
        if dataset is None:
            raise DatasetError(f"The dataset cache {entry} could not be read back. Check the disk, then retry.")
    return dataset


def _cache_key(identity: object, resolution: int) -> str:
    payload = json.dumps({"source": identity, "resolution": resolution, "format": CACHE_FORMAT_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _slug(label: str) -> str:
    tail = label.rstrip("/\\").replace("\\", "/").split("/")[-1] if not label.startswith(("hf:", "demo:")) else label
    return re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip("-.")[:60] or "dataset"


IMAGES_FILE, ATTRIBUTES_FILE, META_FILE = "images.npy", "attributes.npy", "meta.json"


def _read_cache(entry: Path, key: str | None = None) -> FaceDataset | None:
    """The cached dataset in `entry`, or None when it is absent, stale or damaged (then it is decoded again)."""
    try:
        meta = json.loads((entry / META_FILE).read_text())
        if meta["format"] != CACHE_FORMAT_VERSION or (key is not None and meta["key"] != key):
            return None
        images = np.load(entry / IMAGES_FILE, mmap_mode="c")  # copy-on-write: torch wants a writable array
        resolution = meta["resolution"]
        if images.dtype != np.uint8 or images.shape != (meta["report"]["used"], 3, resolution, resolution):
            return None
        attribute_names = tuple(meta["attribute_names"])
        attributes = None
        if attribute_names:
            values = np.load(entry / ATTRIBUTES_FILE)
            if values.shape != (len(images), len(attribute_names)):
                return None
            attributes = torch.from_numpy(values.astype(np.float32))
        report = DatasetReport(**meta["report"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return FaceDataset(torch.from_numpy(images), attributes, attribute_names, report, entry)


def _decode_into_cache(source: Source, resolution: int, entry: Path, key: str, progress: bool) -> None:
    row_bytes = 3 * resolution * resolution
    _prepare_cache_folder(entry, source.count * row_bytes)
    partial = entry / f"{IMAGES_FILE}.{os.getpid()}.partial"
    skipped: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    used = enlarged = 0
    try:
        shape = (source.count, 3, resolution, resolution)
        rows = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=shape)
        attributes = np.zeros((source.count, len(source.attribute_names)), np.uint8)
        raw_images = tqdm(
            source.read_images(), total=source.count, desc=f"Decoding {source.label}", unit="img",
            file=sys.stderr, disable=not progress, dynamic_ncols=True,
        )  # fmt: skip
        for raw in raw_images:
            decoded = decode_image(raw, resolution, source.upscale_small)
            if decoded.pixels is None:
                skipped[decoded.skip_reason] += 1
                reasons = examples.setdefault(decoded.skip_reason, [])
                if len(reasons) < SKIPPED_EXAMPLES_KEPT:
                    reasons.append(raw.name)
                continue
            rows[used] = decoded.pixels.transpose(2, 0, 1)
            if raw.attributes is not None:
                attributes[used] = raw.attributes
            if decoded.conversion:
                converted[decoded.conversion] += 1
            enlarged += decoded.enlarged
            used += 1
        rows.flush()
        del rows  # unmap before the header is rewritten and the file renamed
        report = DatasetReport(source.label, source.count, used, dict(skipped), dict(converted), examples, enlarged)
        if used == 0:
            raise DatasetError(_nothing_usable_message(report, resolution))
        _shrink_npy_rows(partial, used)
        os.replace(partial, entry / IMAGES_FILE)
        if source.attribute_names:
            _save_npy_atomically(entry / ATTRIBUTES_FILE, attributes[:used])
        meta = {
            "format": CACHE_FORMAT_VERSION, "key": key, "resolution": resolution, "report": asdict(report),
            "attribute_names": list(source.attribute_names),
        }  # fmt: skip
        # written last: its presence is what marks the entry complete
        _write_text_atomically(entry / META_FILE, json.dumps(meta, indent=1))
    except OSError as error:
        raise DatasetError(
            f"Cannot write the dataset cache in {entry}: {error.strerror or error}. Free some disk space, or set "
            "FACEGEN_CACHE (or cache_dir) to a folder on a disk with room."
        ) from None
    finally:
        partial.unlink(missing_ok=True)


def _prepare_cache_folder(entry: Path, needed_bytes: int) -> None:
    try:
        entry.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(entry).free
    except OSError as error:
        raise DatasetError(
            f"Cannot create the dataset cache folder {entry}: {error.strerror or error}. Set FACEGEN_CACHE (or "
            "cache_dir) to a writable folder."
        ) from None
    if needed_bytes > free:
        raise DatasetError(
            f"Decoding this dataset needs {needed_bytes / 1e9:.1f} GB in {entry.parent}, but only {free / 1e9:.1f} GB "
            "is free. Free some space, use a lower resolution, or set FACEGEN_CACHE to a bigger disk."
        )
    (entry / META_FILE).unlink(missing_ok=True)  # a stale entry is being replaced: never leave it half-valid


def _nothing_usable_message(report: DatasetReport, resolution: int) -> str:
    reasons = ", ".join(f"{count:,} {reason}" for reason, count in report.skipped.items())
    hints = []
    if "too small" in report.skipped:
        hints.append(
            f"'too small' means the shorter side is under {resolution * MIN_SIDE_FRACTION:g} px "
            f"(half of {resolution}): train at a lower resolution or use larger images"
        )
    if report.skipped.keys() & {"corrupt", "truncated"}:
        hints.append("'corrupt'/'truncated' files cannot be decoded: download or extract them again")
    if "missing" in report.skipped:
        hints.append("'missing' rows of the attribute file have no image beside it: put img_align_celeba/ next to it")
    examples = "; ".join(f"{reason}: {', '.join(names)}" for reason, names in report.skipped_examples.items())
    hints_text = "".join(f" {hint}." for hint in hints)
    return f"No usable image in {report.source}: {report.found:,} found, {reasons}.{hints_text} (e.g. {examples})"


def _shrink_npy_rows(path: Path, rows: int) -> None:
    """Cut a .npy array to its first `rows` along axis 0 in place, without copying the pixels.

    numpy pads every header so the first axis can grow to 21 digits (GROWTH_AXIS_MAX_DIGITS), so the rewritten
    header has exactly the old length and the data does not move.
    """
    with open(path, "r+b") as stream:
        version = np.lib.format.read_magic(stream)
        if version != (1, 0):
            raise RuntimeError(f"unexpected .npy version {version}")
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        data_offset = stream.tell()
        new_shape = (rows, *shape[1:])
        stream.seek(0)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran_order, "shape": new_shape}
        np.lib.format.write_array_header_1_0(stream, header)
        if stream.tell() != data_offset:
            raise RuntimeError("rewritten .npy header changed length")
        stream.truncate(data_offset + rows * int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)


def _save_npy_atomically(path: Path, array: np.ndarray) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "wb") as stream:
            np.save(stream, array)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _write_text_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
