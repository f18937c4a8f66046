"""Dataset images that ask for large memory (a zip member inflating to gigabytes, a PNG header of 13000² pixels) are
skipped as too large from what they declare, and the others train: peak RSS measured in a fresh process."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from tests.test_bounded_inputs import ALLOWED_GROWTH_MB, MEGABYTE, measure, write_black_png

BOMB_BYTES = 2 << 30
GOOD_FACES = 4


def write_faces(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = [folder / f"face{index}.png" for index in range(GOOD_FACES)]
    for path in paths:
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), np.uint8)).save(path)
    return paths


def write_zip_with_a_bomb(path: Path, faces: list[Path]) -> Path:
    """Good faces plus `bomb.png`, a member that declares (and inflates to) 2 GiB of zeros."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for face in faces:
            archive.write(face, face.name)
        chunk = bytes(64 * MEGABYTE)
        with archive.open("bomb.png", "w", force_zip64=True) as member:
            for _ in range(BOMB_BYTES // len(chunk)):
                member.write(chunk)
    return path


def open_in_fresh_process(source: Path, cache: Path):
    return measure(
        "from facegen.data import open_dataset",
        f"open_dataset({str(source)!r}, 32, cache_dir={str(cache)!r}, progress=False).report",
    )


def test_a_zip_member_that_inflates_to_gigabytes_is_skipped_as_too_large(tmp_path):
    dataset = write_zip_with_a_bomb(tmp_path / "faces.zip", write_faces(tmp_path / "faces"))
    assert dataset.stat().st_size < 4 * MEGABYTE
    probe = open_in_fresh_process(dataset, tmp_path / "cache")
    assert probe.error is None and probe.unexpected is None, probe
    assert f"used={GOOD_FACES}" in probe.result and "'too large': 1" in probe.result and "bomb.png" in probe.result
    assert probe.growth_mb < ALLOWED_GROWTH_MB


def test_a_huge_png_in_a_dataset_folder_is_skipped_from_its_header(tmp_path):
    folder = tmp_path / "faces"
    write_faces(folder)
    write_black_png(folder / "huge.png", 13_000)
    probe = open_in_fresh_process(folder, tmp_path / "cache")
    assert probe.error is None and probe.unexpected is None, probe
    assert f"used={GOOD_FACES}" in probe.result and "'too large': 1" in probe.result and "huge.png" in probe.result
    assert probe.growth_mb < ALLOWED_GROWTH_MB
