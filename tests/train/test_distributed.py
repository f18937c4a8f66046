"""`torchrun --nproc_per_node 2 -m facegen train`: two CPU processes (gloo) train one model with DDP."""

import subprocess
import sys

import pytest

from facegen.formats.checkpoint import load_generator
from facegen.train import runs
from tests.train.conftest import TINY_DCGAN, train_env


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["dcgan", "progan"])
def test_two_processes_keep_equal_replicas_and_rank_0_writes_the_run(arch, face_folder, tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    # each architecture takes only its own settings
    tiny = {"dcgan": TINY_DCGAN, "progan": ("--resolution", "32", "--z-dim", "8", "--start-resolution", "8",
                                            "--fmap-base", "64", "--fmap-max", "16")}[arch]  # fmt: skip
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "facegen", "train", "--no-progress", "--arch", arch, "--data", str(face_folder), "--steps", "6",
        "--batch", "8", "--out", str(run_dir), "--log-every", "2", "--checkpoint-every", "3", "--cache-dir", cache_dir,
        *tiny,
    ]  # fmt: skip
    result = subprocess.run(command, env=train_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Finished at step 6") == 1, "only rank 0 reports"

    metrics = runs.read_metrics(run_dir)
    assert [record["step"] for record in metrics] == [2, 3, 4, 6], "one record per logged step: rank 0 alone writes"
    assert metrics[-1]["images_seen"] == 6 * 8, "--batch is the global batch, split over the processes"
    # at every checkpoint the replicas' parameters are compared across processes (max - min over ranks)
    differences = [record["replica_max_difference"] for record in metrics if "replica_max_difference" in record]
    assert differences == [0.0, 0.0]
    assert [checkpoint.step for checkpoint in runs.list_checkpoints(run_dir)] == [3, 6]
    assert load_generator(runs.find_generator_checkpoint(str(run_dir))).sample(seeds=[0]).shape == (1, 32, 32, 3)
