"""The run directory as the registry, the CLI and the Training page read it: status, checkpoints, stop, marks."""

import json
import os
import signal
import subprocess
import time

import pytest

from facegen.errors import ModelNotFoundError
from facegen.train import runs
from tests.train.conftest import TINY_DCGAN, train_cli, train_command, train_env


def tiny_run(face_folder, run_dir, cache_dir, *extra: str) -> None:
    result = train_cli("--arch", "dcgan", "--data", str(face_folder), "--batch", "8", "--out", str(run_dir),
                       "--cache-dir", cache_dir, *TINY_DCGAN, *extra)  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_only_the_newest_checkpoints_and_marked_ones_are_kept(face_folder, tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    tiny_run(face_folder, run_dir, cache_dir, "--steps", "8", "--checkpoint-every", "2", "--keep-checkpoints", "2")
    assert [checkpoint.step for checkpoint in runs.list_checkpoints(run_dir)] == [6, 8]

    assert runs.mark_checkpoint(run_dir, 6) == [6]
    result = train_cli("--resume", str(run_dir), "--steps", "14")
    assert result.returncode == 0, result.stderr
    checkpoints = runs.list_checkpoints(run_dir)
    assert [(checkpoint.step, checkpoint.marked) for checkpoint in checkpoints] == [(6, True), (12, False), (14, False)]
    assert runs.read_config(run_dir)["steps"] == 14, "the longer run is recorded"
    with pytest.raises(Exception, match="no checkpoint at step 7"):
        runs.mark_checkpoint(run_dir, 7)


def test_unknown_run_names_the_known_ones(face_folder, tmp_path, cache_dir):
    tiny_run(face_folder, tmp_path / "alpha", cache_dir, "--steps", "2")
    with pytest.raises(ModelNotFoundError, match="Runs in .*: alpha"):
        runs.resolve_run("beta", runs_root=tmp_path)
    with pytest.raises(ModelNotFoundError, match="no checkpoint at step 1: it was pruned or deleted.*steps 2: name"):
        runs.find_generator_checkpoint("alpha", step=1, runs_root=tmp_path)


def write_status(run_dir, **fields) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"arch": "dcgan", "data": "demo:lfw", "steps": 10}))
    status = {"state": "running", "pid": os.getpid(), "host": os.uname().nodename, "updated": time.time(), "step": 4}
    (run_dir / "status.json").write_text(json.dumps({**status, **fields}))


def test_a_running_run_whose_process_is_gone_or_silent_counts_as_crashed(tmp_path):
    exited = subprocess.Popen(["true"])
    exited.wait()
    write_status(tmp_path / "alive")
    write_status(tmp_path / "dead", pid=exited.pid)
    write_status(tmp_path / "silent", updated=time.time() - runs.HEARTBEAT_STALE_SECONDS - 1)
    write_status(tmp_path / "done", state="finished", step=10)
    states = {summary.name: summary.status for summary in runs.list_runs(tmp_path)}
    assert states == {"alive": "running", "dead": "crashed", "silent": "crashed", "done": "finished"}


@pytest.mark.slow
@pytest.mark.parametrize("how", ["stop file", "SIGTERM"])
def test_a_stop_request_ends_with_a_checkpoint_and_the_run_resumes(face_folder, tmp_path, cache_dir, how):
    run_dir = tmp_path / "run"
    command = train_command("--arch", "dcgan", "--data", str(face_folder), "--steps", "100000", "--batch", "8",
                            "--out", str(run_dir), "--cache-dir", cache_dir, "--log-every", "1",
                            "--checkpoint-every", "1000", *TINY_DCGAN)  # fmt: skip
    process = subprocess.Popen(command, env=train_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not runs.read_metrics(run_dir):
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.05)
    assert runs.summarize_run(run_dir).status == "running"
    if how == "SIGTERM":
        process.send_signal(signal.SIGTERM)
    else:
        (run_dir / "stop").touch()
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    stopped_at = runs.read_status(run_dir)["step"]
    assert f"Stopped at step {stopped_at}" in stdout and f"train --resume {run_dir}" in stdout
    assert runs.read_status(run_dir)["state"] == "stopped"
    assert [checkpoint.step for checkpoint in runs.list_checkpoints(run_dir)] == [stopped_at]
    assert not (run_dir / "stop").exists()

    result = train_cli("--resume", str(run_dir), "--steps", str(stopped_at + 2))
    assert result.returncode == 0, result.stderr
    assert runs.summarize_run(run_dir).status == "finished"
    assert runs.list_checkpoints(run_dir)[-1].step == stopped_at + 2
