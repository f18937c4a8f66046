"""Whole `facegen sample` processes beside NVIDIA's gen_images.py strategy, on full-size random-weight networks.

For each network (StyleGAN2 256 px as bench/stylegan2.py builds it, StyleGAN3-T 256 px as bench/stylegan3.py builds
it) the script saves the random weights once as a facegen checkpoint, then times, each as a fresh process from
start to exit, with the same seeds:

- `facegen sample --model NETWORK.safetensors --seeds 0-63 --precision auto --out DIR/` (and any other precisions
  asked for), the command a user runs;
- a process that does what NVIDIA's `gen_images.py` does on the same weights: import torch, load the network, then
  for each seed draw z from `np.random.RandomState(seed)`, run one image through NVIDIA's inference strategy (the
  baselines of bench/stylegan2.py and bench/stylegan3.py: per-sample weights in a grouped convolution, and for
  StyleGAN3 the reference upfirdn/filtered-leaky-ReLU path) in float32, convert with `x * 127.5 + 128` and save a PNG.

It prints wall seconds, seconds per image, the speed-up, and the PSNR of facegen's PNGs against the baseline's (the
float32 baseline is the reference, so this also shows what `auto` precision costs in pixels).

    python -m bench.sample_process [--networks stylegan2-256 stylegan3-t-256] [--seeds 64] [--precisions auto fp32]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPOSITORY = Path(__file__).resolve().parent.parent
NETWORKS = ("stylegan2-256", "stylegan3-t-256")


def save_network(name: str, path: Path) -> Path:
    """The random-weight network `name` (seed 0) as a facegen checkpoint at `path`."""
    import torch

    from bench.stylegan2 import bench_config
    from bench.stylegan3 import CONFIG as STYLEGAN3_CONFIG
    from facegen.formats import checkpoint
    from facegen.generator import ModelInfo
    from facegen.models import build_generator

    architecture, config = {
        "stylegan2-256": ("stylegan2", dataclasses.replace(bench_config(), num_fp16_res=4)),
        "stylegan3-t-256": ("stylegan3", STYLEGAN3_CONFIG),
    }[name]
    torch.manual_seed(0)
    network = build_generator(architecture, config)
    info = ModelInfo(name, architecture, config.z_dim, 256, has_w_space=True, has_noise_inputs=architecture == "stylegan2")
    return checkpoint.save_generator(path, network, architecture, config, dataclasses.asdict(info))


def nvidia_strategy_worker(weights: Path, seeds: list[int], out: Path) -> None:
    """The baseline process's work, after its imports: gen_images.py's loop, one seed at a time."""
    import torch

    from facegen.formats import checkpoint

    network, description = checkpoint.load_network(weights)
    network.eval().requires_grad_(False)
    if description["architecture"] == "stylegan2":
        from bench.stylegan2 import grouped_convolution_images

        def render(z: torch.Tensor) -> torch.Tensor:
            return grouped_convolution_images(network, z)
    else:
        from bench.stylegan3 import baseline_ops

        def render(z: torch.Tensor) -> torch.Tensor:
            with baseline_ops():
                return network(z)

    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        for seed in seeds:
            z = torch.from_numpy(np.random.RandomState(seed).randn(1, network.config.z_dim)).float()
            image = (render(z).permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
            Image.fromarray(image[0].numpy()).save(out / f"seed{seed:04d}.png")


def timed_process(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPOSITORY, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def images_in(folder: Path, count: int) -> np.ndarray:
    """The `count` PNGs a process wrote into `folder`, in seed order, as one uint8 array."""
    paths = sorted(folder.glob("*.png"))
    if len(paths) != count:
        raise SystemExit(f"{folder.name} holds {len(paths)} images, not the {count} asked for")
    return np.stack([np.asarray(Image.open(path).convert("RGB")) for path in paths])


def compare(name: str, seeds: int, precisions: list[str], scratch: Path) -> None:
    from bench.common import psnr

    weights = save_network(name, scratch / f"{name}.safetensors")
    seed_range = f"0-{seeds - 1}"
    baseline_out = scratch / f"{name}-baseline"
    baseline_seconds = timed_process(
        [sys.executable, "-m", "bench.sample_process", "--nvidia-strategy-worker", str(weights),
         "--seeds", str(seeds), "--out", str(baseline_out)]
    )  # fmt: skip
    references = images_in(baseline_out, seeds)
    print(
        f"{name}, {seeds} seeds: NVIDIA strategy {baseline_seconds:7.1f} s ({baseline_seconds / seeds * 1000:6.0f} "
        "ms/img incl. start-up)",
        flush=True,
    )
    for precision in precisions:
        out = scratch / f"{name}-{precision}"
        seconds = timed_process(
            [sys.executable, "-m", "facegen", "sample", "--model", str(weights), "--seeds", seed_range,
             "--precision", precision, "--device", "cpu", "--out", f"{out}/"]
        )  # fmt: skip
        print(
            f"{name}, {seeds} seeds: facegen --precision {precision:4s} {seconds:7.1f} s ({seconds / seeds * 1000:6.0f} "
            f"ms/img incl. start-up)  x{baseline_seconds / seconds:.2f} faster  PSNR vs baseline "
            f"{psnr(references, images_in(out, seeds)):.1f} dB",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS))
    parser.add_argument("--seeds", type=int, default=64, help="seeds 0..N-1 (default 64)")
    parser.add_argument("--precisions", nargs="+", default=["auto"], choices=("auto", "fp32", "bf16"))
    parser.add_argument("--nvidia-strategy-worker", type=Path, metavar="WEIGHTS", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.nvidia_strategy_worker:
        nvidia_strategy_worker(args.nvidia_strategy_worker, list(range(args.seeds)), args.out)
        return
    import torch

    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}; each figure is one whole process, start-up included")
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.networks:
            compare(name, args.seeds, args.precisions, Path(scratch))


if __name__ == "__main__":
    main()
