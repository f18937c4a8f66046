"""Sampling speed on this machine: images/s and achieved GFLOP/s next to the measured fp32 matmul peak.

Run: python bench/sample.py   (from the repository root; fetches digiface-dcgan64 once)
The baseline is the plain eager tutorial module (what loading the weights into nn.Sequential gives); "facegen" is
the same weights after facegen.inference.prepare_for_inference, as every Generator uses them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import best_seconds, matmul_peak_gflops  # noqa: E402
from facegen.formats.torch_checkpoint import dcgan_config_from_state, read_state_dict  # noqa: E402
from facegen.inference import prepare_for_inference  # noqa: E402
from facegen.models.dcgan import DCGANGenerator  # noqa: E402
from facegen.registry import fetch_model  # noqa: E402

BATCH_SIZES = (1, 16, 64)


def dcgan_gflop_per_image(network: DCGANGenerator) -> float:
    """Multiply-adds of the transposed convolutions, counted from their shapes (batch norm and activations ignored)."""
    flops, size = 0, 1
    for layer in network.main:
        if isinstance(layer, nn.ConvTranspose2d):
            in_channels, out_channels, kernel, _ = layer.weight.shape
            flops += 2 * in_channels * out_channels * kernel * kernel * size * size
            size = (size - 1) * layer.stride[0] - 2 * layer.padding[0] + kernel
    return flops / 1e9


def bench_dcgan(peak: float) -> None:
    state = read_state_dict(fetch_model("digiface-dcgan64"))
    plain = DCGANGenerator(dcgan_config_from_state(state))
    plain.load_state_dict(state)
    plain.eval()
    prepared = prepare_for_inference(plain)
    gflop = dcgan_gflop_per_image(plain)
    print(f"\nDCGAN 64x64 (digiface-dcgan64), {gflop * 1e3:.0f} MFLOP per image")
    print(f"{'batch':>5} {'eager img/s':>12} {'facegen img/s':>14} {'speed-up':>9} {'facegen GFLOP/s':>16} {'% of peak':>10}")
    with torch.inference_mode():
        for batch in BATCH_SIZES:
            z = torch.randn(batch, plain.config.z_dim)
            assert (prepared(z) - plain(z)).abs().max() <= 1e-5
            repeats = 20 if batch == 1 else 5
            eager_s = best_seconds(lambda: plain(z), repeats)
            facegen_s = best_seconds(lambda: prepared(z), repeats)
            achieved = gflop * batch / facegen_s
            print(
                f"{batch:>5} {batch / eager_s:>12.1f} {batch / facegen_s:>14.1f} {eager_s / facegen_s:>8.2f}x "
                f"{achieved:>16.1f} {100 * achieved / peak:>9.0f}%"
            )


def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    peak = matmul_peak_gflops()
    print(f"fp32 matmul peak (1024x1024 GEMM): {peak:.1f} GFLOP/s")
    bench_dcgan(peak)
    print(f"\nfp32 matmul peak again: {matmul_peak_gflops():.1f} GFLOP/s (a large change means a noisy machine)")


if __name__ == "__main__":
    main()
