"""Every precision on this machine, per architecture: ms per image at batch 1 and 8, and PSNR against float32.

Full-size random-weight networks (DCGAN-64, ProGAN-256, StyleGAN2-256, StyleGAN3-T-256 and -R-256), the same seeds
in every precision; a precision this device cannot compute natively is reported as refused, not timed. Also prints
what `auto` means here and the CLI's start-up time for `sample --help`.

    python bench/precision.py [--device auto] [--architectures stylegan2 stylegan3-t] [--repeats 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import best_seconds, psnr  # noqa: E402
from facegen.device import PRECISIONS, describe, resolve_device  # noqa: E402
from facegen.errors import FacegenError  # noqa: E402
from facegen.generator import Generator, ModelInfo  # noqa: E402
from facegen.models import build_generator, get_architecture  # noqa: E402

NETWORKS = {
    "dcgan-64": ("dcgan", {"resolution": 64}),
    "progan-256": ("progan", {"resolution": 256}),
    "stylegan2-256": ("stylegan2", {"img_resolution": 256, "channel_base": 16384, "num_fp16_res": 4}),
    "stylegan3-t-256": ("stylegan3", {"resolution": 256, "mapping_layers": 2}),
    "stylegan3-r-256": (
        "stylegan3",
        {"resolution": 256, "mapping_layers": 2, "conv_kernel": 1, "use_radial_filters": True,
         "channel_base": 65536, "channel_max": 1024},
    ),
}  # fmt: skip
BATCHES = (1, 8)


def random_generator(name: str, device: torch.device) -> Generator:
    architecture, values = NETWORKS[name]
    torch.manual_seed(0)
    config = get_architecture(architecture).config_class(**values)
    network = build_generator(architecture, config)
    resolution = values.get("resolution") or values["img_resolution"]
    return Generator(network, ModelInfo(name, architecture, config.z_dim, resolution), device)


def synchronized(generator: Generator, seeds: list[int], batch: int) -> np.ndarray:
    images = generator.sample(seeds=seeds, batch_size=batch)
    if generator.device.type == "cuda":
        torch.cuda.synchronize(generator.device)
    return images


def cli_start_up_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "facegen", "sample", "--help"], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--architectures", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"device: {describe(device)}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"`python -m facegen sample --help`: {cli_start_up_seconds():.2f} s")
    print(f"{'network':16s} {'precision':9s} {'ms/img b1':>10s} {'ms/img b8':>10s} {'PSNR vs fp32':>13s}")
    for name in args.architectures:
        generator = random_generator(name, device)
        reference = synchronized(generator.set_precision("fp32"), list(range(8)), 8)
        for precision in PRECISIONS:
            try:
                generator.set_precision(precision)
            except FacegenError as error:
                print(f"{name:16s} {precision:9s} refused: {error}")
                continue
            timings = [
                best_seconds(lambda: synchronized(generator, list(range(batch)), batch), args.repeats) * 1000 / batch
                for batch in BATCHES
            ]
            images = synchronized(generator, list(range(8)), 8)
            shown = f"{precision}->{generator.precision}" if precision == "auto" else precision
            print(f"{name:16s} {shown:9s} {timings[0]:10.1f} {timings[1]:10.1f} {psnr(reference, images):12.1f} dB")


if __name__ == "__main__":
    main()
