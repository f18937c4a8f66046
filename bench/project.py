"""Seconds per projection step: facegen's loop beside a plain transcription of NVIDIA's projector loop, on the same
weights and the same perceptual network, for a 256 px StyleGAN2 (full size, random weights, space w) and the shipped
64 px DCGAN (space z).

The plain loop is NVIDIA's `project()` step as written in stylegan2-ada-pytorch: a deep copy of G whose noise
buffers become optimisable, the synthesis network run NVIDIA's inference way (per-sample modulated weights in one
grouped convolution, `bench/stylegan2.py`), the perceptual network as `torch.jit.load` returns it, NCHW images, and
the loss read back every step for its log line. For the DCGAN the same loop optimises z through the network as
trained (no batch-norm folding), with the same Gaussian prior term as facegen's. Like NVIDIA's, neither loop
resizes images of 256 px or less. facegen runs twice: with its perceptual network in float32, and as it runs by
default (`--perceptual-precision auto`: bfloat16 where the CPU computes it natively); the generator and the plain
loop in float32.

The perceptual network is a stand-in of NVIDIA's vgg16.pt (which cannot be downloaded here): torchvision's VGG16
convolutions, random weights, scripted with the LPIPS calling convention (tests/perceptual_stand_in.py). Steps of
the two loops alternate and the fastest of each is kept, which damps a shared machine's noise.

    python -m bench.project [--threads 2] [--steps 4] [--full-dcgan]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench.common import matmul_peak_gflops
from bench.stylegan2 import bench_config, grouped_convolution_synthesis
from facegen.device import PRECISION_NAMES
from facegen.generator import Generator, ModelInfo
from facegen.models.stylegan2 import StyleGAN2Generator
from facegen.projection.perceptual import PerceptualDistance
from facegen.projection.projector import Projection, ProjectionSettings, noise_regularization, project
from facegen.registry import load_generator
from tests.perceptual_stand_in import save_scripted, vgg16_stand_in


class PlainLoop:
    """NVIDIA's projector loop, one `step()` at a time (learning-rate schedule, latent noise, loss, Adam, noise
    re-normalisation), over a latent of the given start value."""

    def __init__(
        self,
        render: Callable[[torch.Tensor], torch.Tensor],
        start: torch.Tensor,
        latent_std: float,
        noise_maps: list[torch.Tensor],
        vgg16: torch.jit.ScriptModule,
        target: torch.Tensor,
        settings: ProjectionSettings,
        z_prior: bool,
    ) -> None:
        self.render, self.vgg16, self.settings, self.z_prior = render, vgg16, settings, z_prior
        self.latent_std, self.noise_maps = latent_std, noise_maps
        self.latent = start.clone().requires_grad_(True)
        if target.shape[2] > 256:
            target = F.interpolate(target, size=(256, 256), mode="area")
        self.target_features = vgg16(target, resize_images=False, return_lpips=True)
        self.optimizer = torch.optim.Adam([self.latent, *noise_maps], betas=(0.9, 0.999), lr=settings.initial_learning_rate)
        self.step_index = 0

    def step(self) -> None:
        settings, t = self.settings, self.step_index / self.settings.steps
        noise_scale = self.latent_std * settings.initial_noise_factor * max(0.0, 1.0 - t / settings.noise_ramp_length) ** 2
        ramp = min(1.0, (1.0 - t) / settings.lr_rampdown_length)
        ramp = (0.5 - 0.5 * np.cos(ramp * np.pi)) * min(1.0, t / settings.lr_rampup_length)
        for group in self.optimizer.param_groups:
            group["lr"] = settings.initial_learning_rate * ramp
        images = self.render(self.latent + torch.randn_like(self.latent) * noise_scale)
        images = (images + 1) * (255 / 2)
        if images.shape[2] > 256:
            images = F.interpolate(images, size=(256, 256), mode="area")
        distance = (self.target_features - self.vgg16(images, resize_images=False, return_lpips=True)).square().sum()
        loss = distance
        if self.noise_maps:
            loss = loss + noise_regularization(self.noise_maps) * settings.regularize_noise_weight
        if self.z_prior:
            loss = loss + self.latent.square().mean() * settings.z_prior_weight
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        print(f"step {self.step_index + 1}: dist {float(distance):.4f} loss {float(loss):.4f}", end="\r")
        with torch.no_grad():
            for noise in self.noise_maps:
                noise -= noise.mean()
                noise *= noise.square().mean().rsqrt()
        self.step_index += 1


def plain_stylegan_loop(network: StyleGAN2Generator, projection: Projection, vgg16_path: Path, target: torch.Tensor) -> PlainLoop:
    G = copy.deepcopy(network).eval().requires_grad_(False)
    noise_maps = []
    for name, buffer in list(G.synthesis.named_buffers()):
        if "noise_const" in name:
            buffer[:] = torch.randn_like(buffer)
            buffer.requires_grad = True
            noise_maps.append(buffer)
    num_ws = network.config.num_ws

    def render(w: torch.Tensor) -> torch.Tensor:
        return grouped_convolution_synthesis(G, w.repeat(1, num_ws, 1))

    start = projection.latent.detach().clone()
    vgg16 = torch.jit.load(str(vgg16_path)).eval()
    return PlainLoop(render, start, projection.latent_std, noise_maps, vgg16, target, projection.settings, z_prior=False)


def plain_dcgan_loop(generator: Generator, projection: Projection, vgg16_path: Path, target: torch.Tensor) -> PlainLoop:
    network = copy.deepcopy(generator.exportable_network).eval().requires_grad_(False)
    vgg16 = torch.jit.load(str(vgg16_path)).eval()
    start = torch.zeros(1, generator.z_dim)
    return PlainLoop(lambda z: network(z), start, 1.0, [], vgg16, target, projection.settings, z_prior=True)


def seconds_per_step(steps: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Fastest step of each loop after one warm-up step each, the loops alternating."""
    for step in steps.values():
        step()
    timings: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            timings[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in timings.items()}


def stylegan2_256() -> Generator:
    torch.manual_seed(0)
    network = StyleGAN2Generator(bench_config())
    config = network.config
    info = ModelInfo("bench-stylegan2-256", "stylegan2", config.z_dim, config.img_resolution, has_w_space=True, has_noise_inputs=True)
    return Generator(network, info)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per loop and model")
    parser.add_argument("--full-dcgan", action="store_true", help="also time the 1,000-step DCGAN default end to end")
    parser.add_argument("--only", choices=("stylegan2", "dcgan"), help="time one model only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        vgg16_path = save_scripted(vgg16_stand_in(), Path(scratch) / "vgg16-stand-in.pt")
        perceptual = {precision: PerceptualDistance.load(vgg16_path, precision=precision) for precision in ("fp32", "auto")}
        default_dtype = PRECISION_NAMES[perceptual["auto"].dtype]
        cases = [
            ("StyleGAN2 256 px, w", stylegan2_256, plain_stylegan_loop, "w"),
            ("DCGAN 64 px (digiface-dcgan64), z", lambda: load_generator("digiface-dcgan64"), plain_dcgan_loop, "z"),
        ]
        if args.only:
            cases = [case for case in cases if case[0].lower().startswith(args.only)]
        print(
            f"threads {args.threads}; peak {matmul_peak_gflops():.0f} GFLOP/s; perceptual network: VGG16-sized LPIPS "
            f"stand-in; facegen's default perceptual precision (auto) is {default_dtype} here"
        )
        for title, make_generator, plain_loop, space in cases:
            generator = make_generator()
            target = generator.sample(seeds=[1])[0]
            settings = ProjectionSettings(steps=1000, space=space, w_average_samples=1000)
            projections = {
                precision: Projection(generator, target, network, settings) for precision, network in perceptual.items()
            }
            target_pixels = torch.from_numpy(target).permute(2, 0, 1)[None].float()
            network = generator.network if space == "w" else generator
            loop = plain_loop(network, projections["fp32"], vgg16_path, target_pixels)
            steps = {
                "facegen, perceptual fp32": projections["fp32"].step,
                f"facegen default ({default_dtype})": projections["auto"].step,
            }
            timings = seconds_per_step({**steps, "plain": loop.step}, args.steps)
            plain = timings.pop("plain")
            figures = "  ".join(
                f"{name} {seconds:.3f} s/step (x{plain / seconds:.2f})" for name, seconds in timings.items()
            )
            print(f"{title}: plain NVIDIA-style {plain:.3f} s/step  {figures}", flush=True)
        if args.full_dcgan:
            generator = load_generator("digiface-dcgan64")
            target = generator.sample(seeds=[1])[0]
            for precision, network in perceptual.items():
                start = time.perf_counter()
                project(generator, target, network, ProjectionSettings(steps=1000))
                seconds = time.perf_counter() - start
                print(f"DCGAN 64 px, 1,000 steps, perceptual precision {precision}: {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
