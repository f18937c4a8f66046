"""Seconds per projection step: facegen's loop beside a plain transcription of NVIDIA's projector loop, on the same
weights and the same perceptual network, for a 256 px StyleGAN2 (full size, random weights, space w) and the shipped
64 px DCGAN (space z).

The plain loop is NVIDIA's `project()` step as written in stylegan2-ada-pytorch: a deep copy of G whose noise
buffers become optimisable, the synthesis network run NVIDIA's inference way (per-sample modulated weights in one
grouped convolution, `bench/stylegan2.py`), the perceptual network as `torch.jit.load` returns it, NCHW images, and
the loss read back every step for its log line. For the DCGAN the same loop optimises z through the network as
trained (no batch-norm folding), with the same Gaussian prior term as facegen's.

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

from bench.stylegan2 import bench_config, grouped_convolution_synthesis
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


def seconds_per_step(ours: Callable[[], None], plain: Callable[[], None], repeats: int) -> tuple[float, float]:
    """Fastest step of each loop after one warm-up step each, the two alternating."""
    ours()
    plain()
    timings: dict[str, list[float]] = {"ours": [], "plain": []}
    for _ in range(repeats):
        for name, step in (("ours", ours), ("plain", plain)):
            start = time.perf_counter()
            step()
            timings[name].append(time.perf_counter() - start)
    return min(timings["ours"]), min(timings["plain"])


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
        perceptual = PerceptualDistance.load(vgg16_path)
        cases = [
            ("StyleGAN2 256 px, w", stylegan2_256, plain_stylegan_loop, "w"),
            ("DCGAN 64 px (digiface-dcgan64), z", lambda: load_generator("digiface-dcgan64"), plain_dcgan_loop, "z"),
        ]
        if args.only:
            cases = [case for case in cases if case[0].lower().startswith(args.only)]
        print(f"threads {args.threads}; perceptual network: VGG16-sized LPIPS stand-in")
        for title, make_generator, plain_loop, space in cases:
            generator = make_generator()
            target = generator.sample(seeds=[1])[0]
            settings = ProjectionSettings(steps=1000, space=space, w_average_samples=1000)
            projection = Projection(generator, target, perceptual, settings)
            target_pixels = torch.from_numpy(target).permute(2, 0, 1)[None].float()
            loop = plain_loop(generator.network if space == "w" else generator, projection, vgg16_path, target_pixels)
            ours, plain = seconds_per_step(projection.step, loop.step, args.steps)
            print(f"{title}: facegen {ours:.3f} s/step  plain NVIDIA-style {plain:.3f} s/step  speed-up {plain / ours:.2f}x", flush=True)
        if args.full_dcgan:
            generator = load_generator("digiface-dcgan64")
            target = generator.sample(seeds=[1])[0]
            start = time.perf_counter()
            project(generator, target, perceptual, ProjectionSettings(steps=1000))
            print(f"DCGAN 64 px, 1,000 steps (the default), end to end: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
