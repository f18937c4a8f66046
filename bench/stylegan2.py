"""CPU speed of facegen's StyleGAN2 at 256x256 (channel_base 16384, channel_max 512, 8 mapping layers, z = w = 512).

Prints ms per image at batch 1 and 8, the machine's fp32 matmul peak measured in the same run, and the goal scaled
to that peak. NVIDIA's own code measured 247 ms/img (batch 1) and 518 ms/img (batch 8) where the peak was 320
GFLOP/s; facegen's goal is 160 ms/img at both.

    python -m bench.stylegan2 [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse

import torch

from bench.common import best_seconds, matmul_peak_gflops
from facegen.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator

GOAL_MS_PER_IMAGE = 160.0
GOAL_PEAK_GFLOPS = 320.0  # the peak of the machine where the goal and NVIDIA's figures were measured
NVIDIA_MS_PER_IMAGE = {1: 247.0, 8: 518.0}


def bench_config() -> StyleGAN2Config:
    return StyleGAN2Config(
        z_dim=512, w_dim=512, img_resolution=256, channel_base=16384, channel_max=512, mapping_layers=8
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    network = StyleGAN2Generator(bench_config()).eval().requires_grad_(False)
    peak = matmul_peak_gflops()
    scale = GOAL_PEAK_GFLOPS / peak
    print(f"threads {args.threads}, fp32 matmul peak {peak:.0f} GFLOP/s (goal machine: {GOAL_PEAK_GFLOPS:.0f})")
    for batch_size in args.batch_sizes:
        z = torch.randn(batch_size, network.config.z_dim)
        with torch.inference_mode():
            seconds = best_seconds(lambda: network(z, None, 1.0, "const"), args.repeats)
        ms_per_image = seconds * 1000 / batch_size
        at_goal_peak = ms_per_image / scale
        line = (
            f"batch {batch_size}: {ms_per_image:6.1f} ms/img; scaled to a {GOAL_PEAK_GFLOPS:.0f} GFLOP/s peak "
            f"{at_goal_peak:6.1f} ms/img (goal {GOAL_MS_PER_IMAGE:.0f}, ratio {at_goal_peak / GOAL_MS_PER_IMAGE:.2f})"
        )
        if batch_size in NVIDIA_MS_PER_IMAGE:
            line += f"; NVIDIA's code {NVIDIA_MS_PER_IMAGE[batch_size]:.0f} ms/img there"
        print(line, flush=True)
    print(f"peak again after the runs: {matmul_peak_gflops():.0f} GFLOP/s (the machine is shared; compare both)")


if __name__ == "__main__":
    main()
