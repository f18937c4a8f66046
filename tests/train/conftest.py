"""Training test set-up: small image folders written here, tiny networks, single-threaded torch.

Tiny convolutions gain nothing from threads, and on a shared machine OpenMP threads that wait on busy cores make
a step up to 50x slower, so the CLI runs with one thread.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import REPO_ROOT, run_cli

CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair "
    "Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones "
    "Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline "
    "Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick "
    "Wearing_Necklace Wearing_Necktie Young"
).split()
# DCGAN at 32x32 with 4 feature maps: a step takes milliseconds, the weights a few kilobytes
TINY_DCGAN = ("--resolution", "32", "--generator-channels", "4", "--discriminator-channels", "4", "--z-dim", "8")
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def blob_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A face-like picture: a bright ellipse with two dark eyes on a coloured background, varied per image."""
    y, x = np.mgrid[0:size, 0:size] / size
    background = rng.uniform(0, 120, 3)
    skin = rng.uniform(140, 255, 3)
    cx, cy = 0.5 + rng.uniform(-0.08, 0.08), 0.5 + rng.uniform(-0.08, 0.08)
    face = ((x - cx) / 0.3) ** 2 + ((y - cy) / 0.38) ** 2 < 1
    image = np.where(face[..., None], skin, background)
    for eye_x in (cx - 0.12, cx + 0.12):
        eye = ((x - eye_x) / 0.05) ** 2 + ((y - cy + 0.08) / 0.04) ** 2 < 1
        image[eye] = 20
    return image.astype(np.uint8)


def write_faces(folder: Path, count: int, size: int = 32, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        Image.fromarray(blob_image(rng, size)).save(folder / f"face{index:04d}.png")
    return folder


@pytest.fixture(scope="session")
def face_folder(tmp_path_factory) -> Path:
    return write_faces(tmp_path_factory.mktemp("faces"), 48)


@pytest.fixture(scope="session")
def celeba_folder(tmp_path_factory) -> Path:
    """A CelebA-shaped folder: img_align_celeba/ plus list_attr_celeba.txt with all 40 attributes."""
    root = tmp_path_factory.mktemp("celeba")
    images = write_faces(root / "img_align_celeba", 24, seed=1)
    rng = np.random.default_rng(2)
    rows = [
        f"{path.name} " + " ".join(str(value) for value in rng.choice([-1, 1], len(CELEBA_ATTRIBUTES)))
        for path in sorted(images.iterdir())
    ]
    (root / "list_attr_celeba.txt").write_text("\n".join([str(len(rows)), " ".join(CELEBA_ATTRIBUTES), *rows]) + "\n")
    return root


@pytest.fixture
def cache_dir(tmp_path) -> str:
    return str(tmp_path / "dataset-cache")


def train_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return run_cli("train", "--no-progress", *args, env=SINGLE_THREAD, timeout=timeout)


def train_command(*args: str) -> list[str]:
    """The `python -m facegen train` command line, for tests that need to signal or kill the process."""
    return [sys.executable, "-m", "facegen", "train", "--no-progress", *args]


def train_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), **SINGLE_THREAD}


@pytest.fixture
def single_thread():
    """For tests that train in this process: one torch thread, restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
