"""What the Training page is built on: curves from metrics.jsonl, timelapses of the grids, starting and stopping runs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from facegen.errors import FacegenError
from facegen.images import resize_image
from facegen.train import browse, runs
from facegen.train.config import ConfigError
from facegen.video import mp4_metadata
from tests.media import decoded_frames
from tests.tiny_runs import TINY_SETTINGS, train_tiny_run, wait_for, write_crashed_run


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("runs") / "tiny", steps=20)


# -- curves -----------------------------------------------------------------------------------------------------
def test_smoothing_zero_keeps_values_and_a_constant_stays_constant_from_the_first_point():
    values = np.array([4.0, 1.0, 3.0, 2.0])
    assert np.allclose(browse.smooth(values, 0.0), values)
    # bias correction: a plain EMA started at 0 would report 0.1 * 5 = 0.5 for the first point
    assert np.allclose(browse.smooth(np.full(6, 5.0), 0.9), 5.0)


def test_smoothing_is_a_bias_corrected_moving_average():
    weight = 0.5
    values = np.array([2.0, 4.0, 8.0])
    first = 2.0
    second = (weight * (1 - weight) * 2.0 + (1 - weight) * 4.0) / (1 - weight**2)
    assert np.allclose(browse.smooth(values, weight)[:2], [first, second])
    assert browse.smooth(values, weight)[2] > second  # it follows the rise, lagging behind it
    with pytest.raises(FacegenError, match="Smoothing"):
        browse.smooth(values, 1.0)


def test_metrics_frame_has_each_logged_metric_over_steps_or_images_seen(finished_run):
    records = runs.read_metrics(finished_run)
    names = browse.metric_names(records)
    assert names[:2] == ["loss_d", "loss_g"]
    assert "step" not in names and "time" not in names
    by_step = browse.metrics_frame(records, ["loss_d", "loss_g"], "step")
    assert set(by_step["metric"]) == {"loss_d", "loss_g"}
    assert sorted(by_step[by_step.metric == "loss_d"]["step"]) == [record["step"] for record in records]
    by_images = browse.metrics_frame(records, ["loss_d"], "images_seen", smoothing=0.8)
    assert list(by_images["images_seen"]) == [record["step"] * TINY_SETTINGS["batch"] for record in records]
    assert np.allclose(by_images["value"], [record["loss_d"] for record in records])
    assert by_images["smoothed"].std() < by_images["value"].std()


# -- timelapse --------------------------------------------------------------------------------------------------
def test_timelapse_shows_every_grid_of_a_run(finished_run, tmp_path):
    grids = runs.list_sample_grids(finished_run)
    assert [grid.step for grid in grids] == [5, 10, 15, 20]
    timelapse = browse.build_timelapse(finished_run, tmp_path / "timelapse.mp4", fps=4, label_steps=False)
    assert timelapse.steps == (5, 10, 15, 20)
    width, height = timelapse.frame_size
    assert height >= browse.MIN_TIMELAPSE_HEIGHT and width % 2 == 0 and height % 2 == 0
    frames = decoded_frames(timelapse.path).astype(float)
    assert len(frames) == len(grids)
    expected = [
        resize_image(np.asarray(Image.open(grid.path).convert("RGB")), (width, height), "nearest").astype(float)
        for grid in grids
    ]
    for frame, grid in zip(frames, expected):
        assert np.abs(frame - grid).mean() < 4, "the frame is far from its grid: colours or scaling went wrong"
    assert json.loads(mp4_metadata(timelapse.path)["comment"])["steps"] == [5, 10, 15, 20]


def test_timelapse_labels_each_frame_with_its_step(finished_run, tmp_path):
    plain = browse.build_timelapse(finished_run, tmp_path / "plain.mp4", label_steps=False)
    labelled = browse.build_timelapse(finished_run, tmp_path / "labelled.mp4", label_steps=True)
    size = plain.frame_size
    plain_frames, labelled_frames = decoded_frames(plain.path), decoded_frames(labelled.path)
    corner = (slice(None), slice(0, 8), slice(0, 8))
    assert np.abs(plain_frames[corner].astype(int) - labelled_frames[corner]).mean() > 20, "no label box in the corner"
    bottom = (slice(None), slice(size[1] // 2, None))
    assert np.abs(plain_frames[bottom].astype(int) - labelled_frames[bottom]).mean() < 3, (
        "the label covers more than a corner"
    )


def test_timelapse_plays_grids_in_step_order_and_scales_grids_that_grew_to_the_final_size(tmp_path):
    run_dir = tmp_path / "growing"
    (run_dir / runs.SAMPLES_DIR).mkdir(parents=True)
    (run_dir / runs.CONFIG_FILE).write_text("{}")
    colours = {100: (255, 0, 0), 200: (0, 255, 0), 300: (0, 0, 255)}
    for (step, colour), side in zip(colours.items(), (64, 128, 256)):
        Image.new("RGB", (side, side), colour).save(runs.sample_grid_path(run_dir, step))
    timelapse = browse.build_timelapse(run_dir, tmp_path / "grew.mp4", label_steps=False)
    assert timelapse.frame_size == (256, 256)
    frames = decoded_frames(timelapse.path)
    for frame, colour in zip(frames, colours.values()):
        assert np.abs(frame.reshape(-1, 3).mean(axis=0) - colour).max() < 12


def test_timelapse_of_a_run_without_grids_says_to_wait(tmp_path):
    run_dir = write_crashed_run(tmp_path / "empty")
    with pytest.raises(FacegenError, match="no sample grids yet"):
        browse.build_timelapse(run_dir, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


# -- starting and stopping --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_started_run_trains_in_its_own_process_and_stops_with_a_final_checkpoint(tmp_path):
    settings = {**TINY_SETTINGS, "steps": 100_000, "checkpoint_every": 100_000}
    launched = browse.start_training_run(settings, "live", tmp_path)
    try:
        # its own session: closing the tab or stopping the app (which signals its process group) leaves it training
        assert os.getsid(launched.process.pid) != os.getsid(0)
        wait_for(lambda: runs.read_metrics(launched.run_dir), 120, "the first metrics")
        assert [run.status for run in runs.list_runs(tmp_path)] == ["running"]
        browse.request_stop(launched.run_dir)
        wait_for(lambda: launched.exited, 120, "the run to stop")
    finally:
        if not launched.exited:
            launched.process.kill()
    assert launched.process.returncode == 0, browse.log_tail(launched.log_path)
    status = runs.read_status(launched.run_dir)
    assert status["state"] == "stopped"
    checkpoints = runs.list_checkpoints(launched.run_dir)
    assert [checkpoint.step for checkpoint in checkpoints] == [status["step"]]
    assert checkpoints[0].resumable
    assert not browse.stop_requested(launched.run_dir)
    assert "Stopped at step" in browse.log_tail(launched.log_path)


def test_bad_settings_are_refused_before_any_process_starts(tmp_path):
    with pytest.raises(ConfigError, match="32 or 64"):
        browse.start_training_run({**TINY_SETTINGS, "resolution": 48, "steps": 10}, "bad", tmp_path)
    with pytest.raises(FacegenError, match="folder name"):
        browse.start_training_run({**TINY_SETTINGS, "steps": 10}, "../escape", tmp_path)
    (tmp_path / "taken").mkdir()
    with pytest.raises(FacegenError, match="already exists"):
        browse.start_training_run({**TINY_SETTINGS, "steps": 10}, "taken", tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken"]


def test_stopping_a_run_that_is_not_running_is_an_error(finished_run, tmp_path):
    with pytest.raises(FacegenError, match="not running"):
        browse.request_stop(finished_run)
    with pytest.raises(FacegenError, match="crashed"):
        browse.request_stop(write_crashed_run(tmp_path / "crashed"))


def test_train_command_is_the_cli_with_the_settings_as_options(tmp_path):
    command = browse.train_command({"arch": "dcgan", "steps": 10, "mirror": False, "lr": None}, tmp_path / "r")
    assert command[1:] == ["-m", "facegen", "train", "--arch", "dcgan", "--steps", "10", "--no-mirror",
                           "--out", str(tmp_path / "r"), "--no-progress"]  # fmt: skip
    line = browse.train_command_line({"arch": "dcgan", "data": "my faces/"}, tmp_path / "r")
    assert line.startswith("python -m facegen train --arch dcgan --data 'my faces/' --out ")
