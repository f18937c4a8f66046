"""The CLI as a user runs it: `python -m facegen sample|models|fetch`."""

import numpy as np
import pytest
from PIL import Image

from facegen.images import grid_tile, read_recipe
from tests.conftest import TINY_DCGAN_PATH, run_cli

TINY = str(TINY_DCGAN_PATH)


@pytest.fixture(scope="module")
def grid_path(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "grid.png"
    result = run_cli("sample", "--model", TINY, "--seeds", "0-15", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_sample_writes_the_models_faces_as_a_4x4_grid(grid_path, tiny_model):
    grid = np.asarray(Image.open(grid_path))
    assert grid.shape == (256, 256, 3)
    tiles = [grid_tile(grid, index, 64, 4) for index in range(16)]
    assert all(np.array_equal(tile, face) for tile, face in zip(tiles, tiny_model.sample(seeds=range(16))))
    assert len({tile.tobytes() for tile in tiles}) == 16, "tiles repeat"


def test_sample_is_reproducible_and_seed_3_alone_equals_tile_3(grid_path, tmp_path):
    again = tmp_path / "again.png"
    assert run_cli("sample", "--model", TINY, "--seeds", "0-15", "--out", str(again)).returncode == 0
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(grid_path)))
    single_dir = tmp_path / "single"
    result = run_cli("sample", "--model", TINY, "--seeds", "3", "--out", f"{single_dir}/")
    assert result.returncode == 0, result.stderr
    single = np.asarray(Image.open(single_dir / "seed0003.png"))
    assert np.array_equal(single, grid_tile(np.asarray(Image.open(grid_path)), 3, 64, 4))


def test_written_png_carries_its_recipe(grid_path, tiny_model):
    recipe = read_recipe(grid_path)
    assert recipe["model"] == TINY
    assert recipe["seeds"] == list(range(16))
    assert recipe["truncation_psi"] == 1.0
    assert recipe["model_sha256"] == tiny_model.identity.weights_sha256


def test_models_lists_the_catalog_with_state(tmp_path):
    result = run_cli("models", env={"FACEGEN_CACHE": str(tmp_path / "empty-cache")})
    assert result.returncode == 0
    line = next(line for line in result.stdout.splitlines() if line.startswith("digiface-dcgan64"))
    assert line.split()[1:4] == ["downloadable", "64", "dcgan"] and line.endswith("14.3 MB")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no-such-model", "--seeds", "1"], "Unknown model 'no-such-model'"),
        (["--model", TINY, "--seeds", "1-x"], "Malformed seed list"),
        (["--model", TINY, "--seeds", "1", "--psi", "2.5"], "outside [0.0, 2.0]"),
        (["--model", TINY, "--seeds", "1", "--class", "2"], "unconditional"),
        (["--model", "missing/weights.pkl", "--seeds", "1"], "does not exist"),
    ],
)
def test_bad_input_fails_with_a_clear_message(args, message, tmp_path):
    result = run_cli("sample", *args, "--out", str(tmp_path / "x.png"))
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("/proc/no/such/dir/x.png", "Cannot create output folder /proc/no/such/dir"),
        ("grid.jpg", "must end in .png (one grid) or / (one PNG per seed)"),
    ],
)
def test_unwritable_or_misnamed_output_fails_before_rendering(out, message, tmp_path):
    target = out if out.startswith("/") else str(tmp_path / out)
    result = run_cli("sample", "--model", TINY, "--seeds", "1", "--out", target)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert not list(tmp_path.iterdir()), "nothing was written"
