"""Own training runs in the model picker, and `run:NAME` pinned to the run's newest checkpoint."""

from __future__ import annotations

import json

from facegen.registry import list_model_choices, pin_run_checkpoint
from facegen.spec import CatalogId, RunRef
from facegen.train import runs


def fake_run(root, name: str, checkpoint_steps: list[int]) -> None:
    """A run directory as the training loop leaves it, with (empty) generator files where checkpoints are."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps({"arch": "dcgan", "data": "demo:lfw", "steps": 300}))
    (run_dir / runs.STATUS_FILE).write_text(json.dumps({"state": "finished", "step": 300, "updated": 1.0}))
    for step in checkpoint_steps:
        folder = run_dir / runs.CHECKPOINTS_DIR / runs.step_name(step)
        folder.mkdir(parents=True)
        (folder / runs.GENERATOR_FILE).write_bytes(b"")


def test_runs_with_a_checkpoint_are_offered_next_to_the_catalog(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_RUNS", str(tmp_path))
    fake_run(tmp_path, "trained", [100, 300])
    fake_run(tmp_path, "just-started", [])
    choices = {choice.spec: choice for choice in list_model_choices()}
    assert "run:trained" in choices and "run:just-started" not in choices
    trained = choices["run:trained"]
    assert not trained.is_catalog and trained.state == "cached"
    assert "dcgan" in trained.title and "step 300" in trained.detail
    assert any(choice.is_catalog for choice in choices.values())


def test_run_specs_are_pinned_to_the_newest_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_RUNS", str(tmp_path))
    fake_run(tmp_path, "trained", [100, 200])
    assert pin_run_checkpoint("run:trained") == RunRef("trained", 200)
    folder = tmp_path / "trained" / runs.CHECKPOINTS_DIR / runs.step_name(300)
    folder.mkdir()
    (folder / runs.GENERATOR_FILE).write_bytes(b"")
    assert str(pin_run_checkpoint("run:trained")) == "run:trained@300", "a newer checkpoint must give a new cache key"
    assert pin_run_checkpoint("run:trained@100") == RunRef("trained", 100)
    assert pin_run_checkpoint("digiface-dcgan64") == CatalogId("digiface-dcgan64")
    assert pin_run_checkpoint("run:missing") == RunRef("missing"), "left for loading to explain"
