"""A training start that cannot work is refused before anything is written: no run folder, no log, one message."""

from __future__ import annotations

import pytest
import torch

from facegen.cli import main as cli_main
from facegen.errors import FacegenError
from facegen.train import browse
from tests.tiny_runs import TINY_SETTINGS

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")


@pytest.fixture
def hub_without_network(tmp_path, monkeypatch):
    """An empty Hugging Face cache and the Hub switched off: an hf: repo that is not cached cannot be had."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def bad_starts(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no faces here")
    return {
        "missing folder": ({"data": str(tmp_path / "nonexistent" / "faces")}, "does not exist"),
        "folder without images": ({"data": str(empty)}, "Found 0 images among 1 files"),
        "hf repo not to be had": ({"data": "hf:nobody/nothing"}, "nobody/nothing is not (completely) in the local"),
        "batch above the dataset": ({"batch": 500}, "Batch 500 is larger than the dataset (100 images in demo:lfw)"),
        "not a device": ({"device": "tpu"}, "Device 'tpu' is not a device: choose auto, cpu, cuda or cuda:N"),
    }


CASES = ["missing folder", "folder without images", "hf repo not to be had", "batch above the dataset", "not a device"]


@pytest.mark.parametrize("case", CASES)
def test_cli_refuses_a_bad_start_and_leaves_no_run_folder(case, tmp_path, capsys, hub_without_network):
    change, message = bad_starts(tmp_path)[case]
    settings = {**TINY_SETTINGS, "steps": 5, **change}
    arguments = [item for name, value in settings.items() for item in ("--" + name.replace("_", "-"), str(value))]

    assert cli_main(["train", *arguments, "--out", str(tmp_path / "runs" / "first"), "--no-progress"]) == 2

    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("case", CASES)
def test_app_start_refuses_a_bad_start_before_any_process_or_file(case, tmp_path, hub_without_network):
    change, message = bad_starts(tmp_path)[case]
    runs_root = tmp_path / "runs"
    with pytest.raises(FacegenError) as refused:
        browse.start_training_run({**TINY_SETTINGS, "steps": 5, **change}, "first", runs_root)
    assert message in str(refused.value)
    assert not runs_root.exists() or list(runs_root.iterdir()) == []


@NO_GPU
def test_cuda_on_a_machine_without_a_gpu_is_one_plain_message(tmp_path, capsys):
    arguments = ["--arch", "dcgan", "--data", "demo:lfw", "--steps", "5", "--device", "cuda"]
    assert cli_main(["train", *arguments, "--out", str(tmp_path / "runs" / "gpu")]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        "error: Device 'cuda' needs a CUDA GPU, and this machine has none that PyTorch can use. Choose device cpu "
        "(or auto, which takes a GPU only when there is one)."
    )
    assert not (tmp_path / "runs").exists()


def test_a_folder_holding_another_run_is_refused_before_the_data_is_read(tmp_path, capsys):
    taken = tmp_path / "runs" / "taken"
    taken.mkdir(parents=True)
    (taken / "metrics.jsonl").write_text("{}\n")
    arguments = ["--arch", "dcgan", "--data", str(tmp_path / "nowhere"), "--steps", "5", "--out", str(taken)]
    assert cli_main(["train", *arguments]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert [path.name for path in taken.iterdir()] == ["metrics.jsonl"]
