"""Tiny real training runs for tests: 32x32 DCGANs with 8 channels on the offline demo:lfw faces."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import torch

from facegen.formats.checkpoint import save_generator
from facegen.models.dcgan import DCGANConfig, DCGANGenerator
from facegen.train import runs
from tests.conftest import run_cli

# seconds on a shared 2-core CPU: about 10 for 20 steps, most of it importing torch and decoding the demo set
TINY_SETTINGS = {
    "arch": "dcgan",
    "data": "demo:lfw",
    "batch": 8,
    "resolution": 32,
    "generator_channels": 8,
    "discriminator_channels": 8,
    "log_every": 2,
    "sample_every": 5,
    "checkpoint_every": 10,
}


def cli_options(settings: dict) -> list[str]:
    return [item for name, value in settings.items() for item in ("--" + name.replace("_", "-"), str(value))]


def train_tiny_run(run_dir: Path, steps: int = 20) -> Path:
    """A finished run through the real `python -m facegen train`: grids every 5 steps, checkpoints every 10."""
    completed = run_cli(
        "train", *cli_options(TINY_SETTINGS), "--steps", str(steps), "--out", str(run_dir), "--no-progress"
    )
    assert completed.returncode == 0, completed.stderr
    return run_dir


def wait_for(condition, timeout_s: float, what: str, interval_s: float = 0.3) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(interval_s)


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def write_crashed_run(run_dir: Path) -> Path:
    """A run directory whose status still says 'running' but whose process is gone, as a killed run leaves it."""
    run_dir.mkdir(parents=True)
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps({"arch": "dcgan", "data": "demo:lfw", "steps": 500}))
    status = {
        "state": "running", "pid": dead_pid(), "host": socket.gethostname(), "started": time.time() - 60,
        "updated": time.time() - 5, "step": 40, "total_steps": 500, "message": "",
    }  # fmt: skip
    (run_dir / runs.STATUS_FILE).write_text(json.dumps(status))
    return run_dir


def write_run_with_checkpoints(run_dir: Path, steps: list[int]) -> Path:
    """A finished run whose checkpoints hold random 32x32 DCGANs, one set of weights per step, written the way
    training writes a checkpoint's generator (in seconds, without training)."""
    run_dir.mkdir(parents=True)
    config = {"arch": "dcgan", "data": "demo:lfw", "steps": max(steps), "checkpoint_every": 10}
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(config))
    (run_dir / runs.STATUS_FILE).write_text(json.dumps({"state": "finished", "step": max(steps), "updated": 1.0}))
    for step in steps:
        add_checkpoint(run_dir, step)
    return run_dir


def add_checkpoint(run_dir: Path, step: int) -> Path:
    """A new checkpoint at `step`, with weights of its own, as the training loop adds one."""
    torch.manual_seed(step)
    config = DCGANConfig(resolution=32, generator_channels=8)
    network = DCGANGenerator(config)
    return runs.write_checkpoint_dir(
        run_dir, step, lambda folder: save_generator(folder / runs.GENERATOR_FILE, network, "dcgan", config, {})
    )
