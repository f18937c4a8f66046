"""GPU smoke test: every family sampled, measured, trained, resumed and rendered on CUDA, checked against the CPU.

Without CUDA it says so and skips the GPU parts; `--cpu-only` runs the same checks with the CPU standing in for the
GPU at toy sizes (CI runs it through tests/test_gpu_smoke.py, so the script itself cannot rot). Each line is one
check with its img/s; the script exits 1 if any check fails. Meant to finish in a few minutes on an H100.

    python bench/gpu_smoke.py [--cpu-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facegen.device import describe, use_exact_float32  # noqa: E402
from facegen.errors import FacegenError  # noqa: E402
from facegen.formats.nvidia_pickle import load_nvidia_generator  # noqa: E402
from facegen.generator import Generator, ModelInfo  # noqa: E402
from facegen.models import build_generator, get_architecture  # noqa: E402
from facegen.registry import load_generator  # noqa: E402
from facegen.train import runs  # noqa: E402
from facegen.train.config import resolve_config  # noqa: E402
from facegen.train.loop import resume_run, start_run  # noqa: E402
from facegen.video import ClipFrames, ClipRecipe  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "nvidia"
FP32_TOLERANCE = 1e-4  # NVIDIA fixtures' tolerance, relative to max(1, max |image|)
TRAIN_SETTINGS = {
    "data": "demo:lfw", "batch": 8, "resolution": 32, "log_every": 5, "sample_every": 1000, "checkpoint_every": 10, "seed": 0,
}  # fmt: skip
PROGAN_SETTINGS = {"resolution": 16, "start_resolution": 8, "fmap_base": 256, "fmap_max": 32}  # 10 steps reach the fade-in
failures: list[str] = []


def check(name: str, passed: bool, detail: str) -> None:
    print(f"{'ok  ' if passed else 'FAIL'} {name}: {detail}", flush=True)
    if not passed:
        failures.append(name)


def timed(action: Callable[[], object], device: torch.device) -> tuple[object, float]:
    start = time.perf_counter()
    result = action()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - start


def families() -> dict[str, Callable[[], Generator]]:
    def random_network(architecture: str, values: dict) -> Callable[[], Generator]:
        def build() -> Generator:
            torch.manual_seed(0)
            config = get_architecture(architecture).config_class(**values)
            info = ModelInfo(architecture, architecture, config.z_dim, 32)
            return Generator(build_generator(architecture, config), info)

        return build

    return {
        "dcgan": random_network("dcgan", {"resolution": 32}),
        "progan": random_network("progan", {"resolution": 32}),
        **{name: (lambda name=name: load_nvidia_generator(FIXTURES / f"{name}.pkl")) for name in ("sg2", "ada", "sg3t", "sg3r")},
    }


def sample_checks(device: torch.device) -> None:
    latents_by_batch = {batch: np.random.RandomState(batch).randn(batch, 512).astype(np.float32) for batch in (1, 8)}
    for name, build in families().items():
        reference, generator = build(), build().to(device)
        for precision in ("fp32", "fp16", "bf16"):
            try:
                generator.set_precision(precision)
            except FacegenError as error:
                print(f"skip {name} {precision}: {error}")
                continue
            for batch, latents in latents_by_batch.items():
                latents = latents[:, : generator.z_dim]
                images, seconds = timed(lambda: generator.render(latents, batch_size=batch), device)
                detail = f"{batch / seconds:.1f} img/s"
                passed = bool(torch.isfinite(images).all())
                if precision == "fp32":
                    expected = reference.render(latents, batch_size=batch)
                    error = (images - expected).abs().max().item() / max(1.0, expected.abs().max().item())
                    passed &= error <= FP32_TOLERANCE
                    detail += f", max |GPU - CPU| {error:.1e}"
                check(f"sample {name} {precision} batch {batch}", passed, detail)


def train(run_dir: Path, device: torch.device, **settings: object) -> float:
    config = resolve_config({**TRAIN_SETTINGS, "device": str(device), **settings, "out": str(run_dir)})
    start_run(config, run_dir, progress=False)
    return images_per_second(run_dir)


def images_per_second(run_dir: Path) -> float:
    log = [json.loads(line) for line in (run_dir / runs.METRICS_FILE).read_text().splitlines() if line.strip()]
    return log[-1].get("images_per_second", float("nan"))


def final_faces(run_dir: Path) -> np.ndarray:
    return load_generator(f"run:{run_dir}").sample(seeds=range(4))


def training_checks(device: torch.device, steps: int, work: Path) -> None:
    # cDCGAN needs CelebA attribute labels, which no offline demo set has; it shares DCGAN's training step
    dcgan_channels = {"generator_channels": 8, "discriminator_channels": 8}
    architectures = {"dcgan": dcgan_channels, "wgan-gp": dcgan_channels, "progan": PROGAN_SETTINGS}
    for arch, settings in architectures.items():
        for amp in (False, True):
            run_dir = work / f"{arch}-{'amp' if amp else 'fp32'}"
            rate = train(run_dir, device, arch=arch, steps=steps, amp=amp, **settings)
            check(f"train {arch} amp={amp}", np.isfinite(rate), f"{rate:.1f} img/s")
    # deterministic kill-and-resume: stopping at a checkpoint and resuming ends with the same weights
    whole, halves = work / "whole", work / "halves"
    train(whole, device, arch="dcgan", steps=20, deterministic=True)
    train(halves, device, arch="dcgan", steps=10, deterministic=True)
    resume_run(halves, 20, progress=False)
    check("resume is deterministic", np.array_equal(final_faces(whole), final_faces(halves)), "20 steps = 10 + 10")
    # a run started on the GPU continues on the CPU
    moved = work / "moved"
    train(moved, device, arch="dcgan", steps=10)
    config_path = moved / runs.CONFIG_FILE
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "device": "cpu"}))
    result = resume_run(moved, 20, progress=False)
    check(f"resume {device} -> cpu", result.step == 20, f"step {result.step}")


def clip_check(device: torch.device) -> None:
    build = families()["sg2"]
    recipe = dataclasses.replace(
        ClipRecipe(model="sg2", keyframe_seeds=(1, 2), fps=10, frames_per_transition=8), space="w"
    )
    frames = np.arange(8)
    expected = ClipFrames(build(), recipe).cell_images(frames)
    pixels, seconds = timed(lambda: ClipFrames(build().to(device), recipe).cell_images(frames), device)
    difference = int(np.abs(pixels.astype(int) - expected.astype(int)).max())
    check("clip frames vs CPU", difference <= 1, f"max {difference} level, {len(frames) / seconds:.1f} frames/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-only", action="store_true", help="the CPU stands in for the GPU, toy sizes (for CI)")
    args = parser.parse_args(argv)
    if args.cpu_only:
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda", 0)
        use_exact_float32()
    else:
        print("no CUDA GPU: GPU smoke test skipped (run with --cpu-only to check the script on the CPU)")
        return 0
    print(f"device: {describe(device)}; torch {torch.__version__}")
    sample_checks(device)
    clip_check(device)
    with tempfile.TemporaryDirectory() as work:
        training_checks(device, 2 if args.cpu_only else 20, Path(work))
    print(f"{len(failures)} check(s) failed: {', '.join(failures)}" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
