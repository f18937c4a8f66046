"""bench/gpu_smoke.py's checks, with the CPU standing in for the GPU, so the script is known to work before a GPU
is lent to run it."""

import pytest

from bench import gpu_smoke


@pytest.mark.slow
def test_gpu_smoke_script_passes_on_the_cpu(capsys):
    assert gpu_smoke.main(["--cpu-only"]) == 0
    printed = capsys.readouterr().out
    assert "sample sg3t fp32 batch 8" in printed and "sample cdcgan fp32 batch 8" in printed
    assert "metrics FID cpu vs cpu" in printed and "train cdcgan amp=False" in printed
    assert "resume is deterministic" in printed
    assert "all checks passed" in printed
