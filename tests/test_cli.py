"""The CLI as a user runs it: `python -m facegen sample|models|fetch`."""

import numpy as np
import pytest
from PIL import Image

from facegen import registry
from facegen.images import grid_tile, read_recipe
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def grid_path(tmp_path_factory, dcgan):
    out = tmp_path_factory.mktemp("cli") / "grid.png"
    result = run_cli("sample", "--model", "digiface-dcgan64", "--seeds", "0-15", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_sample_writes_a_4x4_grid_of_distinct_faces(grid_path):
    grid = np.asarray(Image.open(grid_path))
    assert grid.shape == (256, 256, 3)
    tiles = [grid_tile(grid, index, 64, 4) for index in range(16)]
    assert all(tile.std() > 10 for tile in tiles), "a tile is blank"
    assert len({tile.tobytes() for tile in tiles}) == 16, "tiles repeat"


def test_sample_is_reproducible_and_seed_3_alone_equals_tile_3(grid_path, tmp_path):
    again = tmp_path / "again.png"
    assert run_cli("sample", "--model", "digiface-dcgan64", "--seeds", "0-15", "--out", str(again)).returncode == 0
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(grid_path)))
    single_dir = tmp_path / "single"
    result = run_cli("sample", "--model", "digiface-dcgan64", "--seeds", "3", "--out", f"{single_dir}/")
    assert result.returncode == 0, result.stderr
    single = np.asarray(Image.open(single_dir / "seed0003.png"))
    assert np.array_equal(single, grid_tile(np.asarray(Image.open(grid_path)), 3, 64, 4))


def test_written_png_carries_its_recipe(grid_path, dcgan):
    recipe = read_recipe(grid_path)
    assert recipe["model"] == "digiface-dcgan64"
    assert recipe["seeds"] == list(range(16))
    assert recipe["truncation_psi"] == 1.0
    assert recipe["model_sha256"] == dcgan.identity.weights_sha256 == registry.catalog_entry("digiface-dcgan64").sha256


def test_models_lists_the_catalog_with_state(dcgan):
    result = run_cli("models")
    assert result.returncode == 0
    line = next(line for line in result.stdout.splitlines() if line.startswith("digiface-dcgan64"))
    assert "cached" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no-such-model", "--seeds", "1"], "Unknown model 'no-such-model'"),
        (["--model", "digiface-dcgan64", "--seeds", "1-x"], "Malformed seed list"),
        (["--model", "digiface-dcgan64", "--seeds", "1", "--psi", "2.5"], "outside [0.0, 2.0]"),
        (["--model", "digiface-dcgan64", "--seeds", "1", "--class", "2"], "unconditional"),
        (["--model", "missing/weights.pkl", "--seeds", "1"], "does not exist"),
    ],
)
def test_bad_input_fails_with_a_clear_message(args, message, tmp_path, dcgan):
    result = run_cli("sample", *args, "--out", str(tmp_path / "x.png"))
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("out", ["/proc/no/such/dir/x.png", "grid.jpg"])
def test_unwritable_or_misnamed_output_fails_before_rendering(out, tmp_path, dcgan):
    target = out if out.startswith("/") else str(tmp_path / out)
    result = run_cli("sample", "--model", "digiface-dcgan64", "--seeds", "1", "--out", target)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "output" in result.stderr.lower() or "out" in result.stderr
