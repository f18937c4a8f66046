"""FID/KID costs: Inception feature throughput, and our Fréchet distance against torchmetrics' and scipy's
computations on the same statistics.

    python bench/bench_metrics.py [--quick]

Prints seconds and ratios side by side from one run; on a shared machine compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import best_seconds, matmul_peak_gflops  # noqa: E402
from facegen.metrics import FEATURE_DIM, INCEPTION_INPUT_SIZE, FeatureStats, InceptionFeatures, fid, kid  # noqa: E402


def scipy_fid(stats_a: FeatureStats, stats_b: FeatureStats) -> float:
    root = scipy.linalg.sqrtm(stats_a.cov @ stats_b.cov).real
    return float(np.square(stats_a.mean - stats_b.mean).sum() + np.trace(stats_a.cov + stats_b.cov - 2 * root))


def torchmetrics_fid(stats_a: FeatureStats, stats_b: FeatureStats) -> float:
    from torchmetrics.image.fid import _compute_fid

    tensors = [torch.from_numpy(array) for array in (stats_a.mean, stats_a.cov, stats_b.mean, stats_b.cov)]
    return float(_compute_fid(*tensors))


def gflop_per_image(extractor: InceptionFeatures) -> float:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        extractor.network(torch.zeros(1, 3, INCEPTION_INPUT_SIZE, INCEPTION_INPUT_SIZE))
    return counter.get_total_flops() / 1e9


def synthetic_stats(count: int, seed: int) -> FeatureStats:
    # non-negative, skewed, like post-ReLU pool features
    features = np.random.default_rng(seed).gamma(1.0, 0.3, (count, FEATURE_DIM)).astype(np.float32)
    return FeatureStats.from_features(features)


def timed(compute: Callable[[], float]) -> tuple[float, float]:
    """(seconds, value) of one call: these take seconds each, so one run is enough to compare."""
    start = time.perf_counter()
    value = compute()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer and smaller cases")
    args = parser.parse_args()
    peak = matmul_peak_gflops()
    print(f"torch threads {torch.get_num_threads()}, fp32 matmul peak {peak:.1f} GFLOP/s")

    extractor = InceptionFeatures.load(batch_size=16)
    images = np.random.default_rng(0).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)
    seconds = best_seconds(lambda: extractor(images), repeats=1 if args.quick else 3)
    rate = len(images) / seconds
    achieved = rate * gflop_per_image(extractor)
    print(
        f"Inception features (64px in, batch 16): {rate:.2f} img/s, {achieved:.1f} GFLOP/s = "
        f"{achieved / peak:.0%} of the matmul peak; 10000 images take {10000 / rate / 60:.0f} min"
    )

    sizes = (500, 3000) if args.quick else (500, 2000, 5000)
    print("FID from two sets of n features, one run each:")
    columns = ("n", "ours s", "torchmetrics s", "scipy sqrtm s", "tm/ours", "scipy/ours", "|ours/tm-1|")
    print(" ".join(f"{name:>{width}}" for name, width in zip(columns, (6, 7, 15, 14, 8, 11, 12))))
    for count in sizes:
        stats_a, stats_b = synthetic_stats(count, 1), synthetic_stats(count, 2)
        ours, our_fid = timed(lambda: fid(stats_a, stats_b))
        theirs, their_fid = timed(lambda: torchmetrics_fid(stats_a, stats_b))
        scipy_seconds, _ = timed(lambda: scipy_fid(stats_a, stats_b))
        print(
            f"{count:>6} {ours:>7.2f} {theirs:>15.2f} {scipy_seconds:>14.2f} {theirs / ours:>8.1f} "
            f"{scipy_seconds / ours:>11.1f} {abs(our_fid / their_fid - 1):>12.1e}"
        )

    stats_a, stats_b = synthetic_stats(1000, 1), synthetic_stats(1000, 2)
    subsets = 5 if args.quick else 20
    seconds, _ = timed(lambda: kid(stats_a.features, stats_b.features, subsets=subsets)[0])
    per_subset = seconds / subsets
    print(f"KID, subsets of 1000: {per_subset:.2f} s per subset, {100 * per_subset:.0f} s for the default 100")


if __name__ == "__main__":
    main()
