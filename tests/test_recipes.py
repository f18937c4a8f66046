"""Recipes of own runs: a saved PNG or clip names the checkpoint's step and sha256, replays on exactly those weights
while the run trains on, keeps the checkpoint from pruning, and says clearly when the checkpoint is gone."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from facegen import registry
from facegen.cli import main as cli_main
from facegen.errors import CorruptFileError, FacegenError, ModelNotFoundError
from facegen.formats.checkpoint import save_generator
from facegen.images import make_grid, read_recipe
from facegen.models.dcgan import DCGANConfig, DCGANGenerator
from facegen.sampling import SampleRequest, render
from facegen.spec import ModelIdentity, RunRef
from facegen.train import runs
from tests.media import decoded_frames
from tests.tiny_runs import add_checkpoint, write_run_with_checkpoints

CLIP_OPTIONS = ["--seeds", "1,7,42", "--frames-per-transition", "4", "--upscale", "2"]


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_RUNS", str(tmp_path / "runs"))
    return write_run_with_checkpoints(tmp_path / "runs" / "faces", [10])


def checkpoint_weights(run_dir, step: int):
    return run_dir / runs.CHECKPOINTS_DIR / runs.step_name(step) / runs.GENERATOR_FILE


def make_recipes(run_dir, out_dir, capsys) -> tuple[dict, dict]:
    """A clip and a PNG grid from `run:faces` through the CLI; returns (clip recipe, PNG recipe)."""
    assert cli_main(["video", "--model", "run:faces", *CLIP_OPTIONS, "--out", str(out_dir / "walk.mp4")]) == 0
    assert cli_main(["sample", "--model", "run:faces", "--seeds", "0-3", "--out", str(out_dir / "grid.png")]) == 0
    capsys.readouterr()
    return json.loads((out_dir / "walk.json").read_text()), read_recipe(out_dir / "grid.png")


def replay_png(recipe: dict, what: str = "the PNG") -> np.ndarray:
    generator = registry.load_recorded_generator(recipe["model"], recipe["model_sha256"], what)
    request = SampleRequest(recipe["model"], recipe["seeds"], recipe["truncation_psi"], recipe["noise_mode"])
    return make_grid(render(generator, request), recipe["grid_columns"])


def test_recipes_of_a_run_name_its_step_and_weights_and_replay_after_newer_checkpoints(run_dir, tmp_path, capsys):
    clip, png = make_recipes(run_dir, tmp_path, capsys)
    expected_sha256 = sha256_of(checkpoint_weights(run_dir, 10))
    assert (clip["model"], clip["model_sha256"]) == ("run:faces@10", expected_sha256)
    assert (png["model"], png["model_sha256"]) == ("run:faces@10", expected_sha256)

    for step in (20, 30, 40):
        add_checkpoint(run_dir, step)
    newest = registry.load_generator("run:faces")
    assert newest.identity.spec == RunRef("faces", 40)
    at_step_10 = registry.load_generator("run:faces@10")
    assert not np.array_equal(newest.sample(seeds=[0, 1, 2, 3]), at_step_10.sample(seeds=[0, 1, 2, 3]))

    again = tmp_path / "again.mp4"
    assert cli_main(["video", "--recipe", str(tmp_path / "walk.json"), "--out", str(again)]) == 0
    assert np.array_equal(decoded_frames(again), decoded_frames(tmp_path / "walk.mp4"))
    assert json.loads(again.with_suffix(".json").read_text())["model"] == "run:faces@10"
    assert np.array_equal(replay_png(png), np.asarray(Image.open(tmp_path / "grid.png")))


def test_a_saved_recipe_keeps_its_checkpoint_from_pruning(run_dir, tmp_path, capsys):
    make_recipes(run_dir, tmp_path, capsys)
    assert runs.read_marked(run_dir) == [10]
    for step in (20, 30, 40):
        add_checkpoint(run_dir, step)
    assert runs.prune_checkpoints(run_dir, keep_last=1) == [20, 30]
    assert [checkpoint.step for checkpoint in runs.list_checkpoints(run_dir)] == [10, 40]


def test_replaying_a_recipe_whose_checkpoint_was_deleted_says_which_and_what_to_do(run_dir, tmp_path, capsys):
    clip, png = make_recipes(run_dir, tmp_path, capsys)
    for step in (20, 30, 40):
        add_checkpoint(run_dir, step)
    shutil.rmtree(checkpoint_weights(run_dir, 10).parent)

    assert cli_main(["video", "--recipe", str(tmp_path / "walk.json"), "--out", str(tmp_path / "again.mp4")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert f"The recipe {tmp_path / 'walk.json'} was made with run:faces@10, which is gone" in error
    assert "no checkpoint at step 10: it was pruned or deleted" in error
    assert "checkpoints at steps 20, 30, 40" in error and "run:faces@40" in error and "Keep" in error
    assert not (tmp_path / "again.mp4").exists()
    with pytest.raises(ModelNotFoundError, match="The PNG was made with run:faces@10, which is gone"):
        replay_png(png)


def test_a_recipe_is_refused_when_its_checkpoint_holds_other_weights_now(run_dir, tmp_path, capsys):
    _, png = make_recipes(run_dir, tmp_path, capsys)
    # a resumed run writes the step anew, with a new sha256 record
    torch.manual_seed(99)
    config = DCGANConfig(resolution=32, generator_channels=8)
    save_generator(checkpoint_weights(run_dir, 10), DCGANGenerator(config), "dcgan", config, {})

    assert cli_main(["video", "--recipe", str(tmp_path / "walk.json"), "--out", str(tmp_path / "again.mp4")]) == 2
    error = capsys.readouterr().err
    assert f"The weights differ from those the recipe {tmp_path / 'walk.json'} was made with" in error
    assert f"{png['model_sha256'][:12]}… then" in error
    assert "step 10 of run faces was written anew" in error
    with pytest.raises(FacegenError, match="The weights differ from those the PNG was made with"):
        replay_png(png)


def test_a_checkpoint_changed_after_saving_is_refused_as_damaged(run_dir):
    weights = checkpoint_weights(run_dir, 10)
    recorded = (weights.parent / f"{weights.name}.sha256").read_text().strip()
    assert recorded == sha256_of(weights), "training records the sha256 when it saves"
    assert registry.load_generator("run:faces").identity == ModelIdentity(RunRef("faces", 10), recorded)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="changed after it was saved"):
        registry.load_generator("run:faces")
