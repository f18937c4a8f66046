"""StyleGAN3-T 256x256 on the CPU: ms per image at batch 1 and 8, beside the machine's matmul peak.

The baseline is the textbook path NVIDIA's reference implementation takes on the CPU (per-sample weights in a
grouped convolution; zero-inserted up-sampling, explicit padding, per-axis depthwise FIR in NCHW, strided
slicing), swapped into the same network, so both run on the same weights in the same process.

    python bench/stylegan3.py [--threads 2] [--batches 1 8] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import best_seconds, matmul_peak_gflops  # noqa: E402
from facegen.models import stylegan3  # noqa: E402

CONFIG = stylegan3.StyleGAN3Config(
    z_dim=512, w_dim=512, resolution=256, channel_base=32768, channel_max=512, mapping_layers=2
)
GOAL_MS_PER_IMAGE = 2900  # on a machine whose matmul peak measured 320 GFLOP/s


def baseline_modulated_conv2d(x, weight, styles, bias, demodulate, input_gain):
    batch, out_channels, in_channels, kernel, _ = (len(x), *weight.shape)
    if demodulate:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    weights = weight[None] * styles[:, None, :, None, None]
    if demodulate:
        weights = weights * (weights.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()[:, :, None, None, None]
    weights = weights * input_gain
    x = x.contiguous().reshape(1, batch * in_channels, *x.shape[2:])
    weights = weights.reshape(batch * out_channels, in_channels, kernel, kernel)
    x = F.conv2d(x, weights, padding=kernel - 1, groups=batch)
    return x.reshape(batch, out_channels, *x.shape[2:]) + bias[None, :, None, None]


def baseline_upfirdn2d(x, taps, up, down, padding, gain):
    batch, channels, height, width = x.shape
    if up > 1:
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(batch, channels, height * up, width * up)
    x = F.pad(x, list(padding))
    if taps is not None:
        taps = taps * gain ** (taps.ndim / 2)
        if taps.ndim == 2:
            x = F.conv2d(x, taps.flip([0, 1])[None, None].repeat(channels, 1, 1, 1), groups=channels)
        else:
            flipped = taps.flip(0)
            x = F.conv2d(x, flipped[None, None, None, :].repeat(channels, 1, 1, 1), groups=channels)
            x = F.conv2d(x, flipped[None, None, :, None].repeat(channels, 1, 1, 1), groups=channels)
    return x[:, :, ::down, ::down]


def baseline_filtered_lrelu(x, up_filter, down_filter, up, down, padding, gain, slope, clamp):
    x = baseline_upfirdn2d(x.contiguous(), up_filter, up, 1, padding, up**2)
    x = torch.where(x >= 0, x, x * slope) * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return baseline_upfirdn2d(x, down_filter, 1, down, (0, 0, 0, 0), 1)


@contextlib.contextmanager
def baseline_ops() -> Iterator[None]:
    fast = stylegan3.modulated_conv2d, stylegan3.filtered_lrelu
    stylegan3.modulated_conv2d, stylegan3.filtered_lrelu = baseline_modulated_conv2d, baseline_filtered_lrelu
    try:
        yield
    finally:
        stylegan3.modulated_conv2d, stylegan3.filtered_lrelu = fast


def ms_per_image(network: torch.nn.Module, batch: int, repeats: int) -> tuple[float, torch.Tensor]:
    z = torch.randn(batch, CONFIG.z_dim, generator=torch.Generator().manual_seed(0))
    images = []
    with torch.inference_mode():
        seconds = best_seconds(lambda: images.append(network(z)), repeats=repeats)
    return seconds * 1000 / batch, images[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    network = stylegan3.StyleGAN3Generator(CONFIG).eval()
    print(f"StyleGAN3-T {CONFIG.resolution}x{CONFIG.resolution}, {args.threads} threads")
    print(f"matmul peak before: {matmul_peak_gflops():.0f} GFLOP/s")
    fast_ms = {}
    for batch in args.batches:
        fast_ms[batch], _ = ms_per_image(network, batch, args.repeats)
        print(f"batch {batch}: {fast_ms[batch]:8.0f} ms/img")
    if not args.skip_baseline:
        # Fast, baseline, fast again at batch 1: the load of a shared machine drifts, so the baseline is compared
        # with the mean of the runs around it.
        before_ms, fast_images = ms_per_image(network, 1, repeats=1)
        with baseline_ops():
            baseline_ms, baseline_images = ms_per_image(network, 1, repeats=1)
        after_ms, _ = ms_per_image(network, 1, repeats=1)
        difference = (fast_images - baseline_images).abs().max().item()
        print(f"baseline (reference path), batch 1: {baseline_ms:8.0f} ms/img, max |difference| {difference:.2e}")
        print(f"batch 1 around it: {before_ms:.0f} and {after_ms:.0f} ms/img")
        print(f"speed-up at batch 1: {baseline_ms / ((before_ms + after_ms) / 2):.1f}x")
    peak = matmul_peak_gflops()
    print(f"matmul peak after: {peak:.0f} GFLOP/s")
    print(f"goal: <= {GOAL_MS_PER_IMAGE} ms/img at 320 GFLOP/s peak (the machine is shared; figures are noisy)")


if __name__ == "__main__":
    main()
