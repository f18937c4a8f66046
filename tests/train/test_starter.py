"""The starter run shipped in the repo: small, complete enough to browse, and a model `run:starter` loads."""

import shutil

import numpy as np
from PIL import Image

from facegen.images import make_grid
from facegen.spec import ModelIdentity, RunRef
from facegen.train import runs
from tests.conftest import REPO_ROOT
from tests.train.conftest import train_cli

STARTER = REPO_ROOT / "runs" / "starter"
SIZE_LIMIT_BYTES = 15 * 1024 * 1024


def test_starter_run_is_small_and_holds_config_metrics_grids_and_a_checkpoint():
    size = sum(path.stat().st_size for path in STARTER.rglob("*") if path.is_file())
    assert size < SIZE_LIMIT_BYTES
    config = runs.read_config(STARTER)
    assert config["arch"] == "dcgan" and config["data"].startswith("demo:")
    metrics = runs.read_metrics(STARTER)
    assert metrics[-1]["step"] == config["steps"]
    grids = runs.list_sample_grids(STARTER)
    assert len(grids) >= 2
    assert grids[-1].step == config["steps"]
    assert runs.list_checkpoints(STARTER)[-1].step == config["steps"]
    assert runs.summarize_run(STARTER).status == "finished"


def test_run_starter_loads_from_the_checkout_and_draws_its_last_grid(monkeypatch):
    from facegen.registry import load_generator

    monkeypatch.delenv("FACEGEN_RUNS", raising=False)
    monkeypatch.chdir(REPO_ROOT / "tests")  # no runs/ here: the checkout's runs/ is used
    generator = load_generator("run:starter")
    assert (generator.resolution, generator.z_dim) == (64, 100)
    weights = runs.find_checkpoint("starter").generator_path
    recorded = weights.with_name(weights.name + ".sha256").read_text().strip()
    assert generator.identity == ModelIdentity(RunRef("starter", 3000), recorded), "the shipped sha256 matches"
    last_grid = np.asarray(Image.open(runs.list_sample_grids(STARTER)[-1].path))
    assert np.array_equal(make_grid(generator.sample(seeds=range(16))), last_grid)


def test_resuming_the_starter_explains_why_it_cannot(tmp_path):
    copy = tmp_path / "starter"
    shutil.copytree(STARTER, copy)
    status_before = (copy / "status.json").read_text()
    result = train_cli("--resume", str(copy), "--steps", "5000")
    assert result.returncode == 2
    assert "holds only the generator" in result.stderr and "train a new run" in result.stderr
    assert (copy / "status.json").read_text() == status_before, "a refused resume changes nothing"
