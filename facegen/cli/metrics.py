"""`python -m facegen metrics`: FID and KID of one model against a folder or zip of real images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from facegen.cli import positive_int
from facegen.cli.device import add_device_options, checked_device, load_generator_for
from facegen.cli.progress import download_bar
from facegen.generator import check_truncation_psi
from facegen.images import check_writable_dir, write_atomically
from facegen.metrics import MetricsProgress, MetricsResult, check_generated_count, evaluate_generator

STAGE_LABELS = {"reference": "reference images", "generated": "generated images"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "FID and KID (TF-FID Inception-v3 features) of a model's images against a reference set. "
        "The reference set's features are cached, so later runs against it only render and measure the model."
    )
    parser.add_argument("--model", required=True, help="catalog id, weights file, or run:NAME[@STEP]")
    parser.add_argument(
        "--real",
        required=True,
        help="folder or zip of real images, or any dataset source (demo:digiface-reference is a colour, offline one)",
    )
    parser.add_argument("--n", type=int, default=10000, help="generated images (seeds 0..n-1), at least 50; default 10000")
    parser.add_argument("--json", type=Path, help="also save the numbers and what was measured to this JSON file")
    parser.add_argument("--real-max", type=int, help="use a fixed random subset of at most this many real images")
    parser.add_argument("--psi", type=float, default=1.0, help="truncation psi; 1.0 (none) is the standard")
    parser.add_argument("--batch", type=positive_int, default=32, help="images per forward pass")
    add_device_options(parser)  # --precision: the generator's; Inception always runs in float32
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # validate everything cheap before loading a model or reading images
    check_generated_count(args.n)
    check_truncation_psi(args.psi)
    if args.json is not None:
        check_writable_dir(args.json.parent.resolve())
    device = checked_device(args)
    with download_bar(args.model) as download_progress:
        generator = load_generator_for(args, args.model, device, download_progress)
    with TqdmProgress() as progress:
        result = evaluate_generator(
            generator,
            args.real,
            n=args.n,
            batch_size=args.batch,
            progress=progress,
            truncation_psi=args.psi,
            max_reference_images=args.real_max,
        )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(summary(result))
    if args.json is not None:
        write_atomically(args.json, (result.to_json() + "\n").encode())
        print(f"saved {args.json}")
    return 0


def summary(result: MetricsResult) -> str:
    return (
        f"{result.model_id}: FID {result.fid:.2f}  KID {result.kid_mean:.4f} ± {result.kid_std:.4f}  "
        f"({result.n} generated vs {result.reference_images} reference images at {result.resolution}px)"
    )


class TqdmProgress:
    """A MetricsProgress that shows one tqdm bar per stage, closing a stage's bar when the next one starts."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar: tqdm | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage or self.bar is None:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=STAGE_LABELS.get(stage, stage), unit="img")
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> MetricsProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
