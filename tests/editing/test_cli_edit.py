"""`facegen edit` and `facegen directions` as a user runs them: bad input gives one clear line and writes nothing.

The CLI runs in-process here (`facegen.cli.main`), which parses and reports exactly as `python -m facegen` does;
tests/editing/test_face_recipe.py runs it as a subprocess."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegen.cli import main
from tests.conftest import TINY_DCGAN_PATH

EDITS = Path(__file__).parent.parent / "fixtures" / "nvidia" / "edits"
SG2, SG3T = str(EDITS.parent / "sg2.pkl"), str(EDITS.parent / "sg3t.pkl")


@pytest.fixture(scope="module")
def direction_cache(tmp_path_factory) -> str:
    """A cache folder of its own holding SeFa directions of the sg2 fixture."""
    folder = str(tmp_path_factory.mktemp("cache"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEGEN_CACHE", folder)
        assert main(["directions", "--model", SG2, "--method", "sefa", "--k", "3"]) == 0
    return folder


@pytest.fixture
def cli(capsys):
    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="module")
def plain_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plain") / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    return path


@pytest.fixture(scope="module")
def sg3_face(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sg3") / "face.png"
    assert main(["edit", "--model", SG3T, "--seed", "2", "--out", str(path)]) == 0
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", SG2, "--seed", "1", "--translate", "0.1,0"],
            "has no camera; translate and rotate need a StyleGAN3",
        ),
        (["--model", SG2, "--seed", "1", "--mix", "4:0-12"], "layer 10 is beyond this model's 10 ws"),
        (["--model", SG2, "--seed", "1", "--direction", "smile=2"], "Unknown direction 'smile'"),
        (["--model", SG2, "--seed", "1", "--direction", "sefa-00=2@9-11"], "layer 10 is beyond this model's 10 ws"),
        (["--model", SG2, "--seed", "1", "--cutoff", "11"], "Truncation cutoff 11 is outside 1..10"),
        (["--model", SG2, "--seed", "1", "--direction", "sefa-00"], "write NAME=AMOUNT"),
        (["--model", SG2, "--seed", "1", "--mix", "4"], "write SEED:LAYERS"),
        (["--model", SG2, "--seed", "1", "--mix", "4:top"], "Bad layers 'top'"),
        (["--model", str(TINY_DCGAN_PATH), "--seed", "1", "--mix", "4:0-3"], "has no style layers, so style mixing"),
        (["--model", str(TINY_DCGAN_PATH), "--seed", "1", "--rotate", "10"], "has no camera"),
        (["--model", str(TINY_DCGAN_PATH), "--seed", "1", "--cutoff", "2"], "has no style layers"),
        (["--from", "PLAIN"], "carries no facegen recipe"),
        (["--model", SG2, "--from", "SG3FACE"], "was made with another model"),
    ],
)
def test_bad_input_gives_one_clear_line_and_writes_nothing(
    args, message, cli, direction_cache, plain_png, sg3_face, tmp_path, monkeypatch
):
    if "--direction" in args:
        monkeypatch.setenv("FACEGEN_CACHE", direction_cache)
    out = tmp_path / "face.png"
    args = [{"PLAIN": str(plain_png), "SG3FACE": str(sg3_face)}.get(arg, arg) for arg in args]
    code, _, err = cli("edit", *args, "--out", str(out))
    assert code == 2
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_direction_edit_changes_the_face_and_keep_fixed_changes_the_move(cli, direction_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_CACHE", direction_cache)
    paths = {name: tmp_path / f"{name}.png" for name in ("plain", "moved", "kept")}
    base = ["edit", "--model", SG2, "--seed", "6"]
    assert cli(*base, "--out", str(paths["plain"]))[0] == 0
    assert cli(*base, "--direction", "sefa-00=4@0-5", "--out", str(paths["moved"]))[0] == 0
    assert cli(*base, "--direction", "sefa-00=4@0-5", "--keep-fixed", "sefa-01", "--out", str(paths["kept"]))[0] == 0
    pixels = {name: np.asarray(Image.open(path)).astype(int) for name, path in paths.items()}
    assert np.abs(pixels["moved"] - pixels["plain"]).mean() > 1
    # SeFa directions are orthogonal already: keeping another one fixed leaves the move as it was
    assert np.abs(pixels["kept"] - pixels["moved"]).max() <= 1


def test_directions_list_rename_export_import(cli, direction_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_CACHE", direction_cache)
    code, listed, _ = cli("directions", "--model", SG2, "--list")
    assert code == 0 and "sefa-02" in listed
    exported = tmp_path / "mine.safetensors"
    assert cli("directions", "--model", SG2, "--export", str(exported), "--names", "sefa-00,sefa-01")[0] == 0
    assert exported.stat().st_size < 4096

    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "fresh"))
    assert cli("directions", "--model", SG2, "--import", str(exported))[0] == 0
    assert cli("directions", "--model", SG2, "--rename", "sefa-00=big")[0] == 0
    names = [line.split()[0] for line in cli("directions", "--model", SG2, "--list")[1].splitlines()[1:]]
    assert names == ["big", "sefa-01"]
    code, _, err = cli("directions", "--model", SG3T, "--import", str(exported))
    assert code == 2 and "holds directions of another model" in err
