"""Kill -9 and resume: the weights end up bit-identical, and no checkpoint on disk is ever half-written."""

import json
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from facegen.formats.checkpoint import load_generator
from facegen.train import runs
from tests.train.conftest import TINY_DCGAN, train_cli, train_command, train_env

STEPS = 120


def training_arguments(face_folder, cache_dir) -> tuple[str, ...]:
    return (
        "--arch", "dcgan", "--data", str(face_folder), "--steps", str(STEPS), "--batch", "8", "--deterministic",
        "--checkpoint-every", "5", "--sample-every", "20", "--log-every", "1", "--cache-dir", cache_dir, *TINY_DCGAN,
    )  # fmt: skip


def last_logged_step(run_dir) -> int:
    metrics = runs.read_metrics(run_dir)
    return metrics[-1]["step"] if metrics else 0


def assert_every_visible_checkpoint_is_complete(run_dir) -> None:
    for checkpoint in runs.list_checkpoints(run_dir):
        assert checkpoint.resumable, f"{checkpoint.path} is missing files"
        load_generator(checkpoint.path / runs.GENERATOR_FILE)
        load_file(str(checkpoint.path / runs.DISCRIMINATOR_FILE))
        load_file(str(checkpoint.path / runs.TRAINING_STATE_TENSORS))
        json.loads((checkpoint.path / runs.TRAINING_STATE_JSON).read_text())


def kill_when_past(process: subprocess.Popen, run_dir, step: int, extra_seconds: float) -> bool:
    """SIGKILL once the run has logged `step` plus a moment more; False if it finished first."""
    while last_logged_step(run_dir) < step:
        if process.poll() is not None:
            return False
        time.sleep(0.01)
    time.sleep(extra_seconds)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return True


@pytest.mark.slow
def test_sigkill_then_resume_ends_with_the_uninterrupted_weights(face_folder, tmp_path, cache_dir):
    arguments = training_arguments(face_folder, cache_dir)
    reference = tmp_path / "uninterrupted"
    result = train_cli(*arguments, "--out", str(reference))
    assert result.returncode == 0, result.stderr

    killed = tmp_path / "killed"
    moments = random.Random(7)  # arbitrary, but the same on every run of the test
    command = train_command(*arguments, "--out", str(killed))
    for first_step, last_step in ((10, 50), (60, 100)):
        process = subprocess.Popen(command, env=train_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert kill_when_past(process, killed, moments.randint(first_step, last_step), moments.uniform(0, 0.05)), (
            "the run finished before it could be killed"
        )
        assert runs.list_checkpoints(killed)[-1].step < STEPS
        assert_every_visible_checkpoint_is_complete(killed)
        command = train_command("--resume", str(killed))
    result = subprocess.run(command, env=train_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"Finished at step {STEPS}" in result.stdout

    final = runs.step_name(STEPS)
    for name in (runs.GENERATOR_FILE, runs.DISCRIMINATOR_FILE, runs.TRAINING_STATE_TENSORS):
        expected = load_file(str(reference / "checkpoints" / final / name))
        actual = load_file(str(killed / "checkpoints" / final / name))
        assert expected.keys() == actual.keys()
        for key in expected:
            assert torch.equal(expected[key], actual[key]), f"{name}: {key} differs"
    assert [record["loss_d"] for record in runs.read_metrics(killed)] == [
        record["loss_d"] for record in runs.read_metrics(reference)
    ], "the resumed run logged every step once, with the same losses"
    assert runs.read_status(killed)["state"] == "finished"


KILLED_WHILE_WRITING = """
import os, signal, sys
from pathlib import Path
from facegen.formats.checkpoint import save_generator
from facegen.models.dcgan import DCGANConfig, DCGANGenerator
from facegen.train import runs

config = DCGANConfig(z_dim=8, generator_channels=4, resolution=32)

def fill(folder):
    save_generator(folder / runs.GENERATOR_FILE, DCGANGenerator(config), "dcgan", config)
    os.kill(os.getpid(), signal.SIGKILL)  # dies before the discriminator and training state are written

runs.write_checkpoint_dir(Path(sys.argv[1]), 999, fill)
"""


@pytest.mark.slow
def test_a_process_killed_while_writing_a_checkpoint_leaves_none_visible(face_folder, tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    result = train_cli("--arch", "dcgan", "--data", str(face_folder), "--steps", "5", "--batch", "8",
                       "--cache-dir", cache_dir, "--out", str(run_dir), *TINY_DCGAN)  # fmt: skip
    assert result.returncode == 0, result.stderr
    died = subprocess.run([sys.executable, "-c", KILLED_WHILE_WRITING, str(run_dir)], env=train_env())
    assert died.returncode == -signal.SIGKILL
    assert [checkpoint.step for checkpoint in runs.list_checkpoints(run_dir)] == [5]
    assert runs.find_generator_checkpoint(str(run_dir)).parent.name == "step-00000005"
    leftovers = [entry.name for entry in (run_dir / "checkpoints").iterdir() if entry.name.startswith(".")]
    assert leftovers, "the half-written checkpoint stays hidden until a resume clears it"

    result = train_cli("--resume", str(run_dir), "--steps", "7")
    assert result.returncode == 0, result.stderr
    assert sorted(entry.name for entry in (run_dir / "checkpoints").iterdir()) == ["step-00000005", "step-00000007"]


@pytest.mark.slow
def test_a_generator_only_checkpoint_cannot_resume_and_says_why(face_folder, tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    result = train_cli("--arch", "dcgan", "--data", str(face_folder), "--steps", "3", "--batch", "8",
                       "--cache-dir", cache_dir, "--out", str(run_dir), *TINY_DCGAN)  # fmt: skip
    assert result.returncode == 0, result.stderr
    checkpoint = runs.list_checkpoints(run_dir)[-1].path
    for name in (runs.DISCRIMINATOR_FILE, runs.TRAINING_STATE_TENSORS, runs.TRAINING_STATE_JSON):
        (checkpoint / name).unlink()
    result = train_cli("--resume", str(run_dir), "--steps", "6")
    assert result.returncode == 2
    assert "holds only the generator" in result.stderr and "Traceback" not in result.stderr
    assert load_generator(runs.find_generator_checkpoint(str(run_dir))).sample(seeds=[0]).shape == (1, 32, 32, 3)
