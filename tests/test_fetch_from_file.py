"""`facegen fetch ID --from PATH` for catalog entries without a published hash: the file is read and must be the
network the entry describes (format, family, resolution, z and w sizes), and `models` says that is all it checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facegen import formats, registry
from facegen.cli import main as cli_main
from facegen.formats.checkpoint import save_generator
from facegen.models.dcgan import DCGANConfig, DCGANGenerator

NVIDIA_FIXTURES = Path(__file__).parent / "fixtures" / "nvidia"
STRUCTURE_ONLY = "no published hash: checked by structure only"


def catalog_table(model_id: str, family: str, resolution: int, z_dim: int, w_dim: int) -> str:
    return f"""
[models.{model_id}]
title = "{model_id}"
family = "{family}"
format = "nvidia-pickle"
resolution = {resolution}
z_dim = {z_dim}
w_dim = {w_dim}
filename = "{model_id}.pkl"
license = "test only"

[[models.{model_id}.sources]]
kind = "url"
url = "https://downloads.invalid/{model_id}.pkl"
"""


@pytest.fixture
def catalog(tmp_path, monkeypatch) -> Path:
    """Two NVIDIA entries without hashes: one the sg2 fixture is (64 px, z and w 96), one like FFHQ 1024."""
    path = tmp_path / "catalog.toml"
    path.write_text(
        catalog_table("small-faces", "stylegan2", 64, 96, 96)
        + catalog_table("ffhq-like", "stylegan2", 1024, 512, 512)
    )
    monkeypatch.setattr(registry, "CATALOG_PATH", path)
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))
    return path


def fetch_from(model_id: str, path: Path) -> int:
    return cli_main(["fetch", model_id, "--from", str(path)])


def assert_refused(capsys, model_id: str, *problems: str) -> None:
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and all(problem in error for problem in problems), error
    assert not registry.cached_path(registry.catalog_entry(model_id)).exists(), "nothing is installed"


def test_a_64_px_pickle_is_not_installed_as_a_1024_px_model(catalog, capsys):
    assert fetch_from("ffhq-like", NVIDIA_FIXTURES / "sg2.pkl") == 2
    differences = ("resolution 64 (expected 1024)", "z_dim 96 (expected 512)", "w_dim 96 (expected 512)")
    assert_refused(capsys, "ffhq-like", "sg2.pkl is not the ffhq-like network", *differences)


def test_a_stylegan3_pickle_is_not_installed_as_a_stylegan2_model(catalog, capsys):
    assert fetch_from("small-faces", NVIDIA_FIXTURES / "sg3t.pkl") == 2
    assert_refused(capsys, "small-faces", "family stylegan3 (expected stylegan2)")


def test_a_safetensors_file_is_not_installed_as_an_nvidia_pickle(catalog, tmp_path, capsys):
    torch.manual_seed(0)
    config = DCGANConfig(resolution=32, generator_channels=8)
    own = save_generator(tmp_path / "own.safetensors", DCGANGenerator(config), "dcgan", config)
    assert fetch_from("small-faces", own) == 2
    assert_refused(
        capsys, "small-faces", "own.safetensors is in the facegen format", "not nvidia-pickle as small-faces is"
    )


def test_the_right_pickle_is_installed_and_draws_its_faces(catalog, tmp_path, capsys):
    downloaded = tmp_path / "downloads" / "small-faces.pkl"
    downloaded.parent.mkdir()
    shutil.copyfile(NVIDIA_FIXTURES / "sg2.pkl", downloaded)
    assert fetch_from("small-faces", downloaded) == 0
    installed = registry.cached_path(registry.catalog_entry("small-faces"))
    assert installed.read_bytes() == downloaded.read_bytes()
    expected = formats.load_weights(downloaded, "the fixture").sample(seeds=[0, 1])
    assert np.array_equal(registry.load_generator("small-faces").sample(seeds=[0, 1]), expected)


def test_models_says_how_each_entry_is_checked(catalog, capsys):
    assert cli_main(["models"]) == 0
    listing = capsys.readouterr().out
    assert listing.count(f"    check: {STRUCTURE_ONLY}") == 2


def test_the_shipped_catalog_says_which_models_have_no_published_hash(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "empty-cache"))
    assert cli_main(["models"]) == 0
    checks = [line for line in capsys.readouterr().out.splitlines() if line.startswith("    check: ")]
    catalog = registry.load_catalog()
    assert len(checks) == len(catalog)
    assert checks[list(catalog).index("digiface-dcgan64")] == "    check: sha256 published: checked by hash"
    assert checks[list(catalog).index("stylegan2-ffhq-1024")] == f"    check: {STRUCTURE_ONLY}"
    for entry in catalog.values():
        if registry.install_check(entry) == STRUCTURE_ONLY:
            assert STRUCTURE_ONLY in entry.card, f"the {entry.model_id} card says it"
