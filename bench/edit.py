"""Editing speed: from a slider change (one edit's amount) to the new uint8 image, and the time to find directions.

Models: a 64x64 DCGAN (the tutorial's size, random weights) and a full-size 256x256 StyleGAN2 (random weights, the
network of bench/stylegan2.py). A slider move renders a face whose mapped ws the FaceRenderer already holds, so
StyleGAN2 only re-runs synthesis. Goals: slider -> image <= 0.3 s for the StyleGAN2 on 2 cores; SeFa < 1 s.

    python -m bench.edit [--threads 2] [--moves 5] [--pca-samples 20000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from bench.common import matmul_peak_gflops
from bench.stylegan2 import bench_config
from facegen.editing.directions import move_along, pca_directions, sefa_directions
from facegen.editing.face import Face
from facegen.editing.render import FaceRenderer
from facegen.generator import Generator, ModelInfo
from facegen.models.dcgan import DCGANConfig, DCGANGenerator
from facegen.models.stylegan2 import StyleGAN2Generator

SLIDER_GOAL_SECONDS = 0.3
SEFA_GOAL_SECONDS = 1.0


def random_generators() -> dict[str, Generator]:
    torch.manual_seed(0)
    dcgan = DCGANGenerator(DCGANConfig())
    stylegan2 = StyleGAN2Generator(bench_config())
    return {
        "DCGAN 64x64": Generator(dcgan, ModelInfo("bench-dcgan64", "dcgan", 100, 64)),
        "StyleGAN2 256x256": Generator(
            stylegan2,
            ModelInfo("bench-stylegan2-256", "stylegan2", 512, 256, has_w_space=True),
        ),
    }


def seconds(step: Callable[[], object]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def bench_model(label: str, generator: Generator, moves: int, pca_samples: int) -> None:
    sefa_first_s = seconds(lambda: sefa_directions(generator))  # includes the process's first linear-algebra call
    sefa_s = seconds(lambda: sefa_directions(generator))
    direction = sefa_directions(generator, count=1)[0]
    renderer = FaceRenderer(generator)
    face = Face.from_seed(generator, 7, truncation_psi=0.7)
    first_s = seconds(lambda: renderer.render(face.with_edits(move_along(direction, 0.0))))
    # each move changes the amount, as dragging a slider does; the mapped ws stay cached
    move_s = [
        seconds(lambda amount=amount: renderer.render(face.with_edits(move_along(direction, amount))))
        for amount in range(1, moves + 1)
    ]
    # the floor a slider move cannot go below: the network alone on the same input, in the same run
    if generator.has_w_space:
        ws = renderer.edited_ws(face)
        floor_s = [seconds(lambda: generator.synthesize(ws)) for _ in range(moves)]
    else:
        z = renderer.edited_z(face)
        floor_s = [seconds(lambda: generator.render(z)) for _ in range(moves)]
    pca_s = seconds(lambda: pca_directions(generator, samples=pca_samples))
    slider = statistics.median(move_s)
    goal = f" (goal <= {SLIDER_GOAL_SECONDS} s)" if generator.has_w_space else ""
    print(f"\n{label}")
    print(f"  first render of a face (maps z):   {first_s * 1e3:8.0f} ms")
    print(
        f"  slider move -> new uint8 image:    {slider * 1e3:8.0f} ms median, {min(move_s) * 1e3:.0f}-{max(move_s) * 1e3:.0f} over {moves}{goal}"
    )
    print(
        f"  SeFa, 20 directions:               {sefa_s * 1e3:8.0f} ms (goal < {SEFA_GOAL_SECONDS:.0f} s); "
        f"first in the process {sefa_first_s * 1e3:.0f} ms"
    )
    print(f"  network alone (baseline):          {statistics.median(floor_s) * 1e3:8.0f} ms median")
    print(f"  PCA, 20 directions of {pca_samples} samples: {pca_s:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--moves", type=int, default=5, help="slider moves timed per model")
    parser.add_argument("--pca-samples", type=int, default=20000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads; fp32 matmul peak {matmul_peak_gflops():.0f} GFLOP/s")
    for label, generator in random_generators().items():
        bench_model(label, generator, args.moves, args.pca_samples)
    print(f"\nfp32 matmul peak again: {matmul_peak_gflops():.0f} GFLOP/s (a large change means a noisy machine)")


if __name__ == "__main__":
    main()
