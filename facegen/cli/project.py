"""`facegen project`: a photo's face projected into a model's latent space."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from tqdm import tqdm

from facegen.cli.device import add_device_options, checked_device, load_generator_for
from facegen.cli.progress import download_bar
from facegen.faces.photo import read_photo
from facegen.projection.job import project_photo
from facegen.projection.perceptual import DEFAULT_PERCEPTUAL_PRECISION, PERCEPTUAL_PRECISIONS, PerceptualDistance
from facegen.projection.projector import SPACES, ProjectionSettings, ProjectionUpdate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Detect the face in a photo, align it as FFHQ was aligned at the model's resolution, and "
        "optimise a latent until the model draws it (NVIDIA's projector recipe). Writes aligned.png, projected.png, "
        "face.json, projected_w.npz (models with a W space), projection.json and progress.mp4 into --out."
    )
    parser.add_argument("--model", required=True, help="catalog id, weights file path, or run:NAME[@STEP]")
    parser.add_argument("--image", required=True, help="the photo (JPEG, PNG, WebP, ...)")
    parser.add_argument("--steps", type=int, default=ProjectionSettings.steps, help="optimisation steps (default 1000)")
    parser.add_argument("--space", choices=SPACES, help="latent to optimise (default: w if the model has one, else z)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the optimisation's noise (default 0)")
    parser.add_argument("--face", type=int, help="which face, largest first (default 0: the largest)")
    parser.add_argument(
        "--aligned", action="store_true", help="the photo is an aligned face already: skip detection, only resize"
    )
    parser.add_argument(
        "--perceptual",
        metavar="PATH",
        help="LPIPS network file (default: $FACEGEN_PERCEPTUAL, else NVIDIA's vgg16.pt, fetched)",
    )
    parser.add_argument(
        "--perceptual-precision",
        choices=PERCEPTUAL_PRECISIONS,
        default=DEFAULT_PERCEPTUAL_PRECISION,
        help="the perceptual network's number format: auto (bfloat16 where the hardware computes it natively, "
        "else float32; default), fp32 or bf16. It steers the optimisation only; --precision renders the face",
    )
    parser.add_argument("--no-video", action="store_true", help="skip progress.mp4")
    add_device_options(parser)
    parser.add_argument("--out", required=True, help="output folder")
    parser.set_defaults(run=run_project)


def run_project(args: argparse.Namespace) -> int:
    # everything cheap and everything that can fail offline comes before the model and the optimisation
    settings = ProjectionSettings(steps=args.steps, space=args.space, seed=args.seed)
    device = checked_device(args)
    photo = read_photo(args.image)
    with download_bar("perceptual network") as progress:
        perceptual = PerceptualDistance.load(args.perceptual, device, progress, args.perceptual_precision)
    with download_bar(args.model) as progress:
        generator = load_generator_for(args, args.model, device, progress)
    bars: list[tqdm] = []

    def show(update: ProjectionUpdate) -> None:
        # created at the first step, so a photo without a face fails without a bar drawn first
        if not bars:
            bars.append(tqdm(total=settings.steps, desc="projecting", unit="step", leave=False))
        bars[0].update(update.step - bars[0].n)
        if update.distance is not None:
            bars[0].set_postfix(distance=f"{update.distance:.4f}")

    try:
        outputs = project_photo(
            photo, generator, perceptual, args.out, settings, args.face, Path(args.image).name, show,
            write_video=not args.no_video, photo_is_aligned=args.aligned,
        )  # fmt: skip
    finally:
        for bar in bars:
            bar.close()
    for field in dataclasses.fields(outputs):
        value = getattr(outputs, field.name)
        if isinstance(value, Path) and field.name != "directory":
            print(value)
    return 0
