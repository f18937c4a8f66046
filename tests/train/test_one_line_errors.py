"""Bad input on the command line ends with exit code 2 and one line saying what is wrong, never a traceback:
a batch of 0, a damaged run config.json, a checkpoint JSON that does not describe its weights, an unwritable run
folder (refused before the first training step), a folder given as --model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from facegen.train import runs
from tests.conftest import REPO_ROOT, run_cli
from tests.train.conftest import SINGLE_THREAD, TINY_DCGAN, train_cli


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, face_folder) -> Path:
    """A finished 5-step run with one resumable checkpoint; tests copy it before damaging it."""
    root = tmp_path_factory.mktemp("runs")
    result = train_cli(
        "--arch", "dcgan", "--data", str(face_folder), "--steps", "5", "--batch", "4", "--checkpoint-every", "5",
        "--cache-dir", str(root / "cache"), *TINY_DCGAN, "--out", str(root / "tiny"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return root / "tiny"


def copy_of(run_dir: Path, destination: Path) -> Path:
    shutil.copytree(run_dir, destination)
    return destination


@pytest.mark.parametrize("command", ["sample", "video", "metrics"])
def test_a_batch_of_zero_is_one_line(command, tmp_path):
    arguments = {
        "sample": ["--seeds", "0-3", "--out", str(tmp_path / "a.png")],
        "video": ["--seeds", "1,2", "--out", str(tmp_path / "a.mp4")],
        "metrics": ["--real", "demo:lfw", "--n", "2"],
    }[command]
    result = run_cli(command, "--model", "digiface-dcgan64", "--batch", "0", *arguments)
    assert_one_line_error(result, "--batch", "0")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("damage", ['{"arch": "dcgan", "steps": ', '["dcgan"]'], ids=["cut short", "a list"])
def test_a_damaged_run_config_is_one_line(damage, tiny_run, tmp_path):
    run_dir = copy_of(tiny_run, tmp_path / "damaged")
    (run_dir / runs.CONFIG_FILE).write_text(damage)
    result = train_cli("--resume", str(run_dir), "--steps", "10")
    assert_one_line_error(result, str(run_dir / runs.CONFIG_FILE))
    assert (run_dir / runs.CONFIG_FILE).read_text() == damage


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"architecture": "nope"}, "unknown architecture 'nope'"),
        ({"config": {"resolution": 33}}, "resolution 32 or 64, not 33"),
        ({"config": {"generator_channels": 8}}, "do not match"),
        ({"info": {"resolution": 1024}}, "declares resolution 1024"),
        ({"info": {"resolution": "big"}}, "declares resolution 'big'"),
    ],
)
def test_a_checkpoint_json_that_does_not_describe_its_weights_is_one_line(change, problem, tiny_run, tmp_path):
    checkpoint = runs.list_checkpoints(tiny_run)[-1].path
    weights = tmp_path / "tiny.safetensors"
    shutil.copy(checkpoint / runs.GENERATOR_FILE, weights)
    description = json.loads((checkpoint / "generator.json").read_text())
    for key, value in change.items():
        description[key] = {**description[key], **value} if isinstance(value, dict) else value
    (tmp_path / "tiny.json").write_text(json.dumps(description))
    result = run_cli("sample", "--model", str(weights), "--seeds", "0-3", "--out", str(tmp_path / "grid.png"))
    assert_one_line_error(result, problem)
    assert not (tmp_path / "grid.png").exists()


def test_a_folder_given_as_model_is_one_line(tmp_path):
    result = run_cli("sample", "--model", str(tmp_path), "--seeds", "0-3", "--out", str(tmp_path / "grid.png"))
    assert_one_line_error(result, "is a folder")


def without_root_powers() -> list[str]:
    """A command prefix under which permissions apply: root writes anywhere unless it drops CAP_DAC_OVERRIDE."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only folder cannot be made")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def test_a_read_only_checkpoints_folder_is_refused_before_training(tiny_run, tmp_path):
    run_dir = copy_of(tiny_run, tmp_path / "run")
    (run_dir / runs.CHECKPOINTS_DIR).chmod(0o555)
    metrics_before = (run_dir / runs.METRICS_FILE).read_text()
    try:
        result = subprocess.run(
            [*without_root_powers(), sys.executable, "-m", "facegen", "train", "--no-progress", "--resume",
             str(run_dir), "--steps", "50"],
            env={**os.environ, **SINGLE_THREAD, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
    finally:
        (run_dir / runs.CHECKPOINTS_DIR).chmod(0o755)
    assert_one_line_error(result, str(run_dir / runs.CHECKPOINTS_DIR), "not writable")
    assert (run_dir / runs.METRICS_FILE).read_text() == metrics_before, "refused before any step was trained"
