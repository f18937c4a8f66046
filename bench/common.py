"""Shared measuring helpers for the bench scripts: a practical peak and a steady timer."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch


def matmul_peak_gflops(size: int = 1024, repeats: int = 20) -> float:
    """fp32 GEMM throughput of this machine right now: the practical peak the other figures are compared to."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    seconds = best_seconds(lambda: a @ b, repeats)
    return 2 * size**3 / seconds / 1e9


def best_seconds(step: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Fastest of `repeats` timed calls after `warmup` untimed ones; the minimum is the least noisy estimate."""
    for _ in range(warmup):
        step()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        timings.append(time.perf_counter() - start)
    return min(timings)


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    """PSNR in dB of uint8-range images against a reference; infinite for identical images."""
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(image, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)
