"""facegen's StyleGAN2 against NVIDIA's own outputs for the real-format fixtures (tests/fixtures/nvidia).

Each fixture is a random-weight NVIDIA generator pickle plus what NVIDIA's code computed from it on the CPU: ws,
float images (noise 'const' and 'none') and uint8 images for seeds 0, 1, 42 and truncation psi 1.0 and 0.5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facegen.formats.nvidia_pickle import load_nvidia_generator
from facegen.generator import Generator

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvidia"
# Allowed max |ours - NVIDIA| relative to max(1, max |NVIDIA|), the fixtures' README tolerance. Every reference is
# NVIDIA's float32 output (the StyleGAN2-ADA one with force_fp32), so one tolerance holds all of them.
TOLERANCE = 1e-4
NAMES = ["ada", "sg2"]


@pytest.fixture(scope="module", params=NAMES)
def fixture(request: pytest.FixtureRequest) -> tuple[str, Generator, dict[str, np.ndarray]]:
    name = request.param
    with np.load(FIXTURES / f"{name}.npz") as arrays:
        reference = dict(arrays)
    return name, load_nvidia_generator(FIXTURES / f"{name}.pkl"), reference


def assert_close(ours: torch.Tensor | np.ndarray, reference: np.ndarray, relative: float) -> None:
    ours = np.asarray(ours, dtype=np.float64)
    assert ours.shape == reference.shape
    error = np.abs(ours - reference).max()
    assert error <= relative * max(1.0, np.abs(reference).max()), f"max error {error}"


def test_ws_match_nvidia(fixture):
    _, generator, reference = fixture
    for index, psi in enumerate(reference["psis"]):
        ws = generator.map_to_w(reference["z"], truncation_psi=float(psi))
        assert_close(ws, reference["ws"][:, index], TOLERANCE)


def test_images_match_nvidia_batched_and_one_at_a_time(fixture):
    _, generator, reference = fixture
    seeds = len(reference["seeds"])
    for index, psi in enumerate(reference["psis"]):
        for batch_size in (seeds, 1):  # a batch and a single image run different code paths
            images = generator.render(reference["z"], truncation_psi=float(psi), batch_size=batch_size)
            assert_close(images, reference["img"][:, index], TOLERANCE)


def test_synthesis_of_nvidia_ws_matches_nvidia(fixture):
    _, generator, reference = fixture
    for index in range(len(reference["psis"])):
        images = generator.synthesize(torch.from_numpy(reference["ws"][:, index]))
        assert_close(images, reference["img"][:, index], TOLERANCE)


def test_images_without_noise_match_nvidia(fixture):
    _, generator, reference = fixture
    images = generator.render(reference["z"], truncation_psi=1.0, noise_mode="none")
    assert_close(images, reference["img_noise_none"], TOLERANCE)


def test_seeds_give_nvidias_uint8_images_within_one_level(fixture):
    _, generator, reference = fixture
    seeds = [int(seed) for seed in reference["seeds"]]
    for index, psi in enumerate(reference["psis"]):
        pixels = generator.sample(seeds=seeds, truncation_psi=float(psi))
        assert pixels.dtype == np.uint8
        assert np.abs(pixels.astype(int) - reference["img_uint8"][:, index]).max() <= 1
    pixels = generator.sample(seeds=seeds, noise_mode="none")
    assert np.abs(pixels.astype(int) - reference["img_noise_none_uint8"]).max() <= 1
