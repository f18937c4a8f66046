"""Where a clip goes: grid GIFs at any frame rate, one writer per output, and a clip and its recipe JSON replaced
together or not at all."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch

from facegen.cli import main as cli_main
from facegen.errors import FacegenError
from facegen.formats.checkpoint import save_generator
from facegen.models.dcgan import DCGANConfig, DCGANGenerator
from facegen.video import FfmpegPipe, check_clip_outputs
from tests.media import decoded_frames


@pytest.fixture
def tiny_dcgan_file(tmp_path) -> Path:
    torch.manual_seed(0)
    config = DCGANConfig(resolution=32, generator_channels=8)
    return save_generator(tmp_path / "tiny.safetensors", DCGANGenerator(config), "dcgan", config, {"model_id": "tiny"})


def video(model: Path, *arguments: str) -> int:
    return cli_main(["video", "--model", str(model), *arguments])


def test_a_grid_gif_at_30_fps_keeps_every_other_frame(tiny_dcgan_file, tmp_path):
    # 9 cells in a 16-image batch is one frame a batch, fewer than the GIF's stride of 2
    out = tmp_path / "g.gif"
    grid = ["--random-keyframes", "2", "--grid", "3x3", "--fps", "30", "--seconds", "1", "--out", str(out)]
    assert video(tiny_dcgan_file, *grid) == 0
    assert len(decoded_frames(out)) == 15


@pytest.mark.parametrize(
    ("outs", "problem"),
    [
        (["a.mp4", "a.mp4"], "a.mp4 is named twice"),
        (["a.mp4", "sub/../a.mp4"], "a.mp4 is named twice"),
        (["a.gif", "b.gif"], "two GIFs (a.gif, b.gif)"),
        (["a.mp4", "b.MP4"], "two MP4s (a.mp4, b.MP4)"),
    ],
)
def test_duplicate_or_conflicting_outputs_are_refused_before_rendering(
    tiny_dcgan_file, tmp_path, capsys, outs, problem
):
    (tmp_path / "sub").mkdir()
    out_arguments = [argument for out in outs for argument in ("--out", str(tmp_path / out))]
    assert video(tiny_dcgan_file, "--seeds", "1,2", "--frames-per-transition", "3", *out_arguments) == 2
    error = capsys.readouterr().err
    assert problem in error and error.count("\n") == 1, error
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sub", "tiny.json", "tiny.safetensors", "tiny.safetensors.sha256"]


def test_an_mp4_and_a_gif_share_one_recipe(tiny_dcgan_file, tmp_path):
    outs = ["--out", str(tmp_path / "a.mp4"), "--out", str(tmp_path / "a.gif")]
    assert video(tiny_dcgan_file, "--seeds", "1,2", "--frames-per-transition", "3", *outs) == 0
    assert json.loads((tmp_path / "a.json").read_text())["keyframe_seeds"] == [1, 2]
    assert check_clip_outputs([tmp_path / "a.mp4", tmp_path / "a.gif"]) == [tmp_path / "a.mp4", tmp_path / "a.gif"]


@pytest.fixture
def first_clip(tiny_dcgan_file, tmp_path) -> dict[str, bytes]:
    """A rendered a.mp4 + a.gif + a.json, as bytes, to compare with what a failed second render leaves."""
    outs = ["--out", str(tmp_path / "a.mp4"), "--out", str(tmp_path / "a.gif")]
    assert video(tiny_dcgan_file, "--seeds", "1,2", "--frames-per-transition", "3", *outs) == 0
    return {name: (tmp_path / name).read_bytes() for name in ("a.mp4", "a.gif", "a.json")}


def files_beside(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if not path.name.startswith("tiny.")}


def render_again(model: Path, folder: Path) -> int:
    outs = ["--out", str(folder / "a.mp4"), "--out", str(folder / "a.gif")]
    return video(model, "--seeds", "5,6,7", "--frames-per-transition", "3", *outs)


def test_a_failed_encode_leaves_the_old_clip_and_recipe(tiny_dcgan_file, tmp_path, first_clip, monkeypatch, capsys):
    def encoder_fails(self):
        raise FacegenError(f"ffmpeg failed while writing {self.description}: No space left on device.")

    monkeypatch.setattr(FfmpegPipe, "finish", encoder_fails)
    assert render_again(tiny_dcgan_file, tmp_path) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert files_beside(tmp_path) == first_clip


def test_a_recipe_that_cannot_be_written_leaves_the_old_clip(
    tiny_dcgan_file, tmp_path, first_clip, monkeypatch, capsys
):
    real_write_bytes = Path.write_bytes

    def disk_full_for_json(path: Path, data: bytes) -> int:
        if ".json" in path.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full_for_json)
    assert render_again(tiny_dcgan_file, tmp_path) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith("error: Cannot write") and "a.json: No space left on device" in last_line
    assert files_beside(tmp_path) == first_clip


def test_a_second_render_replaces_clip_and_recipe_together(tiny_dcgan_file, tmp_path, first_clip):
    assert render_again(tiny_dcgan_file, tmp_path) == 0
    assert json.loads((tmp_path / "a.json").read_text())["keyframe_seeds"] == [5, 6, 7]
    assert len(decoded_frames(tmp_path / "a.mp4")) == 2 * 3 + 1
    assert sorted(files_beside(tmp_path)) == ["a.gif", "a.json", "a.mp4"], "no temporary is left"
