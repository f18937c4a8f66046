"""FID/KID costs: Inception feature throughput, and our Fréchet distance against torchmetrics' and scipy's
computations on the same statistics.

    python bench/bench_metrics.py [--quick]

Prints seconds and ratios side by side from one run; on a shared machine compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import best_seconds, matmul_peak_gflops  # noqa: E402
from facegen.metrics import FEATURE_DIM, FeatureStats, InceptionFeatures, fid, kid  # noqa: E402

# multiply-adds of the TF-FID Inception-v3 at 299x299, counted over its convolutions, as FLOPs (2 per MAC)
INCEPTION_GFLOP_PER_IMAGE = 11.4


def scipy_fid(stats_a: FeatureStats, stats_b: FeatureStats) -> float:
    root = scipy.linalg.sqrtm(stats_a.cov @ stats_b.cov).real
    return float(np.square(stats_a.mean - stats_b.mean).sum() + np.trace(stats_a.cov + stats_b.cov - 2 * root))


def torchmetrics_fid(stats_a: FeatureStats, stats_b: FeatureStats) -> float:
    from torchmetrics.image.fid import _compute_fid

    tensors = [torch.from_numpy(array) for array in (stats_a.mean, stats_a.cov, stats_b.mean, stats_b.cov)]
    return float(_compute_fid(*tensors))


def synthetic_stats(count: int, seed: int) -> FeatureStats:
    # non-negative, skewed, like post-ReLU pool features
    return FeatureStats.from_features(np.random.default_rng(seed).gamma(1.0, 0.3, (count, FEATURE_DIM)).astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer and smaller cases")
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}, fp32 matmul peak {matmul_peak_gflops():.1f} GFLOP/s")

    extractor = InceptionFeatures.load(batch_size=16)
    images = np.random.default_rng(0).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)
    seconds = best_seconds(lambda: extractor(images), repeats=1 if args.quick else 3)
    rate = len(images) / seconds
    print(
        f"Inception features (64px in, batch 16): {rate:.2f} img/s, {rate * INCEPTION_GFLOP_PER_IMAGE:.1f} GFLOP/s; "
        f"10000 images take {10000 / rate / 60:.0f} min"
    )

    sizes = (500, 3000) if args.quick else (500, 2000, 5000)
    print(f"{'n':>6} {'ours s':>8} {'torchmetrics s':>15} {'scipy sqrtm s':>14} {'tm/ours':>8} {'scipy/ours':>10} {'|ours/tm-1|':>12}")
    for count in sizes:
        stats_a, stats_b = synthetic_stats(count, 1), synthetic_stats(count, 2)
        ours = best_seconds(lambda: fid(stats_a, stats_b), repeats=1, warmup=0)
        theirs = best_seconds(lambda: torchmetrics_fid(stats_a, stats_b), repeats=1, warmup=0)
        scipy_seconds = best_seconds(lambda: scipy_fid(stats_a, stats_b), repeats=1, warmup=0)
        difference = abs(fid(stats_a, stats_b) / torchmetrics_fid(stats_a, stats_b) - 1)
        print(
            f"{count:>6} {ours:>8.2f} {theirs:>15.2f} {scipy_seconds:>14.2f} {theirs / ours:>8.1f} "
            f"{scipy_seconds / ours:>10.1f} {difference:>12.1e}"
        )

    stats_a, stats_b = synthetic_stats(1000, 1), synthetic_stats(1000, 2)
    subsets = 5 if args.quick else 20
    seconds = best_seconds(lambda: kid(stats_a.features, stats_b.features, subsets=subsets), repeats=1, warmup=0)
    print(f"KID, subsets of 1000: {seconds / subsets:.2f} s per subset, {100 * seconds / subsets:.0f} s for the default 100")


if __name__ == "__main__":
    main()
