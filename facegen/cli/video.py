"""`facegen video`: a latent walk through keyframe seeds to MP4 and/or GIF, or a recipe rendered again."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

from facegen.cli.progress import download_bar
from facegen.errors import FacegenError
from facegen.generator import NOISE_MODES
from facegen.latent import EASINGS, INTERPOLATIONS, fill_keyframe_seeds, parse_seeds
from facegen.registry import load_generator, load_recorded_generator
from facegen.train.runs import keep_recipe_checkpoint
from facegen.video import (
    DEFAULT_SECONDS_PER_TRANSITION,
    SPACES,
    UPSCALE_FILTERS,
    ClipRecipe,
    ProgressCallback,
    check_clip_outputs,
    read_clip_recipe,
    recipe_for_generator,
    render_clip,
    seconds_to_frames_per_transition,
    suggested_upscale,
)

# options that decide the frames: a replayed recipe already fixes them all
RECIPE_OPTIONS = (
    "seeds", "random_keyframes", "seconds", "frames_per_transition", "fps", "loop", "space", "interpolation",
    "easing", "grid", "psi", "noise_mode", "class_index", "upscale", "upscale_filter", "labels",
)  # fmt: skip


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "video",
        help="render a latent walk through keyframe seeds to MP4/GIF",
        description="Render a walk through keyframe seeds. Defaults: 30 fps, 2 s per transition, slerp in z "
        "(w for StyleGAN models) with ease-in-out. A recipe JSON is written beside the clip; --recipe renders it "
        "again.",
    )
    parser.add_argument("--model", help="catalog id, weights file path, or run:NAME[@STEP]")
    parser.add_argument("--seeds", help="keyframe seeds in order, e.g. 1,7,42 (with --grid: keyframe by keyframe)")
    parser.add_argument(
        "--random-keyframes", type=int, metavar="N", help="fill up to N keyframes per walk with random seeds"
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float, help="clip length; the MP4 has fps x seconds frames")
    length.add_argument("--frames-per-transition", type=int, metavar="N", help="frames from one keyframe to the next")
    parser.add_argument("--fps", type=int, help="frames per second (default 30)")
    parser.add_argument(
        "--loop", action="store_const", const=True, help="walk back to the first keyframe, for a seamless loop"
    )
    parser.add_argument("--space", choices=SPACES, help="latent space to walk (default: w if the model has one)")
    parser.add_argument("--interpolation", choices=INTERPOLATIONS, help="slerp (default), linear, or cubic spline")
    parser.add_argument("--easing", choices=tuple(EASINGS), help="pace within each transition (default ease-in-out)")
    parser.add_argument("--grid", metavar="ROWSxCOLS", help="several independent walks in one video, e.g. 2x3")
    parser.add_argument("--psi", type=float, help="truncation psi in [0, 2] (default 1: none)")
    parser.add_argument("--noise-mode", choices=NOISE_MODES)
    parser.add_argument("--class", dest="class_index", type=int, help="class index for conditional networks")
    parser.add_argument(
        "--upscale",
        type=int,
        help="enlarge each face by this whole factor (1-8); default: faces of at least 256 px (4 for a 64 px model)",
    )
    parser.add_argument(
        "--upscale-filter", choices=UPSCALE_FILTERS, help="lanczos (smooth, default) or nearest (pixels)"
    )
    parser.add_argument("--labels", action="store_const", const=True, help="print the keyframe seeds on each face")
    parser.add_argument("--recipe", metavar="PATH", help="render a recipe (.json beside a clip, or the .mp4) again")
    parser.add_argument("--batch", type=int, default=16, help="images per forward pass")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--out", action="append", required=True, help="walk.mp4 and/or walk.gif; repeat for both")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # everything cheap is checked before the model loads, so typos fail in milliseconds
    out_paths = check_clip_outputs(args.out)
    if args.recipe:
        recipe = _replayed_recipe(args)
    else:
        if not args.model:
            raise FacegenError("Name a model with --model (catalog id, weights file or run:NAME), or give --recipe.")
        recipe = _recipe_from_options(args)
    model_spec = args.model or recipe.model
    with download_bar(model_spec) as progress:
        if args.recipe:
            generator = load_recorded_generator(
                model_spec, recipe.model_sha256, f"the recipe {args.recipe}", args.device, progress
            )
        else:
            generator = load_generator(model_spec, device=args.device, progress=progress)
    if not args.recipe:
        recipe = dataclasses.replace(
            recipe,
            space=args.space or ("w" if generator.has_w_space else "z"),
            upscale=args.upscale or suggested_upscale(generator.resolution),  # a 64 px model makes 256 px faces
        )
    recipe = recipe_for_generator(recipe, generator)
    keep_recipe_checkpoint(generator.identity.spec)
    print(f"keyframe seeds: {','.join(map(str, recipe.keyframe_seeds))}", file=sys.stderr)
    with frame_bar(out_paths[0].name) as progress:
        result = render_clip(generator, recipe, out_paths, progress=progress, batch_size=args.batch)
    width, height = result.frame_size
    for path in (*result.paths, *result.recipe_paths):
        print(path)
    print(
        f"{result.frame_count} frames of {width}x{height} at {recipe.fps} fps ({recipe.duration_seconds:g} s)",
        file=sys.stderr,
    )
    return 0


@contextmanager
def frame_bar(description: str) -> Iterator[ProgressCallback]:
    """A frame-counting bar, shown from the first finished batch: a render refused at once prints no empty bar."""
    bars: list[tqdm] = []

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="frame", desc=description, file=sys.stderr))
        bars[0].update(done - bars[0].n)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


def _replayed_recipe(args: argparse.Namespace) -> ClipRecipe:
    given = [f"--{name.replace('_', '-')}" for name in RECIPE_OPTIONS if getattr(args, name) is not None]
    if given:
        raise FacegenError(
            f"--recipe renders a clip exactly as recorded, so {', '.join(given)} cannot change it. Drop them, or "
            "edit a copy of the recipe JSON. (--model may point at the same weights in a new place.)"
        )
    return read_clip_recipe(args.recipe)


def _recipe_from_options(args: argparse.Namespace) -> ClipRecipe:
    rows, cols = _parse_grid(args.grid) if args.grid else (1, 1)
    seeds = parse_seeds(args.seeds) if args.seeds else []
    if args.random_keyframes is not None:
        seeds = fill_keyframe_seeds(seeds, args.random_keyframes, rows * cols)
    elif not seeds:
        raise FacegenError("Give keyframe seeds with --seeds (e.g. 1,7,42) or random ones with --random-keyframes N.")
    fps = 30 if args.fps is None else args.fps
    frames_per_transition = args.frames_per_transition
    if args.seconds is None and frames_per_transition is None:
        frames_per_transition = seconds_to_frames_per_transition(DEFAULT_SECONDS_PER_TRANSITION, fps)
    options = {
        "interpolation": args.interpolation,
        "easing": args.easing,
        "loop": args.loop,
        "truncation_psi": args.psi,
        "noise_mode": args.noise_mode,
        "conditioning": args.class_index,
        "upscale": args.upscale,
        "upscale_filter": args.upscale_filter,
        "seed_labels": args.labels,
    }
    return ClipRecipe(
        model=args.model,
        keyframe_seeds=tuple(seeds),
        fps=fps,
        seconds=args.seconds,
        frames_per_transition=frames_per_transition,
        grid_rows=rows,
        grid_cols=cols,
        **{name: value for name, value in options.items() if value is not None},
    )


def _parse_grid(text: str) -> tuple[int, int]:
    rows, separator, cols = text.lower().partition("x")
    if not separator or not rows.isdigit() or not cols.isdigit():
        raise FacegenError(f"Grid {text!r} is not ROWSxCOLS; write e.g. --grid 2x3.")
    return int(rows), int(cols)
