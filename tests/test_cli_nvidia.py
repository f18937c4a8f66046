"""`python -m facegen sample --model NETWORK.pkl`: NVIDIA pickles through the CLI give NVIDIA's pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facegen.formats.checkpoint import save_generator
from facegen.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from tests.conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "nvidia"
NVIDIA_FIXTURES = sorted(path.stem for path in FIXTURES.glob("*.pkl"))


@pytest.mark.parametrize("name", NVIDIA_FIXTURES)
def test_cli_sample_of_nvidia_pickle_equals_nvidia_uint8_within_one_level(name, tmp_path):
    with np.load(FIXTURES / f"{name}.npz") as arrays:
        reference = dict(arrays)
    psi_index = list(reference["psis"]).index(0.5)
    out = tmp_path / "faces"
    result = run_cli(
        "sample", "--model", str(FIXTURES / f"{name}.pkl"), "--seeds", "0,1,42", "--psi", "0.5",
        "--noise-mode", "const", "--out", f"{out}/",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for row, seed in enumerate(reference["seeds"]):
        pixels = np.asarray(Image.open(out / f"seed{int(seed):04d}.png")).astype(int)
        assert np.abs(pixels - reference["img_uint8"][row, psi_index]).max() <= 1, f"seed {seed}"


@pytest.fixture(scope="module")
def conditional_network(tmp_path_factory) -> Path:
    """A small conditional StyleGAN2 (5 classes) saved in facegen's own format."""
    torch.manual_seed(3)
    config = StyleGAN2Config(z_dim=16, c_dim=5, w_dim=16, img_resolution=16, mapping_layers=2, channel_base=256, channel_max=16)
    network = StyleGAN2Generator(config)
    info = {"c_dim": 5, "label_names": [f"class {index}" for index in range(5)], "has_w_space": True}
    return save_generator(tmp_path_factory.mktemp("cond") / "cond.safetensors", network, "stylegan2", config, info)


def test_cli_class_picks_a_one_hot_label(conditional_network, tmp_path):
    outputs = {}
    for class_index in (0, 3):
        out = tmp_path / f"class{class_index}.png"
        result = run_cli("sample", "--model", str(conditional_network), "--seeds", "7", "--class", str(class_index), "--out", str(out))
        assert result.returncode == 0, result.stderr
        outputs[class_index] = np.asarray(Image.open(out))
    assert not np.array_equal(outputs[0], outputs[3]), "the class label had no effect"


@pytest.mark.parametrize(("extra", "message"), [([], "--class K"), (["--class", "5"], "out of range")])
def test_cli_conditional_network_needs_a_valid_class(conditional_network, tmp_path, extra, message):
    result = run_cli("sample", "--model", str(conditional_network), "--seeds", "7", *extra, "--out", str(tmp_path / "x.png"))
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
