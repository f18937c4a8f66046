"""`facegen video`: a latent walk (through keyframe seeds and faces, a direction sweep, or a seamless loop) to MP4
and/or GIF, or a recipe rendered again."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

from facegen.cli import positive_int
from facegen.cli.device import add_device_options, checked_device, load_generator_for
from facegen.cli.progress import download_bar
from facegen.editing import Face, MoveAlong, find_direction, move_along
from facegen.errors import FacegenError
from facegen.generator import NOISE_MODES, Generator
from facegen.latent import EASINGS, INTERPOLATIONS, LOOP_WALKS, WALKS, fill_keyframe_seeds, parse_seeds, random_seeds
from facegen.registry import load_recorded_generator
from facegen.train.runs import keep_recipe_checkpoint
from facegen.video import (
    DEFAULT_LOOP_SECONDS,
    DEFAULT_SECONDS_PER_TRANSITION,
    SPACES,
    UPSCALE_FILTERS,
    ClipRecipe,
    FaceKeyframe,
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
    "walk", "seeds", "faces", "random_keyframes", "direction", "amount", "seconds", "frames_per_transition", "fps",
    "loop", "space", "interpolation", "easing", "grid", "psi", "cutoff", "noise_mode", "class_index", "upscale",
    "upscale_filter", "labels",
)  # fmt: skip
DEFAULT_SWEEP_AMOUNT = 3.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Render a walk through keyframe seeds and faces (--walk keyframes), a sweep from -A to +A along "
        "one direction through a face (--walk sweep --direction NAME --amount A), or a seamless loop that needs no "
        "keyframes (--walk circle or noise-loop; one seed per walk picks it). Defaults: 30 fps, 2 s per transition "
        "(6 s per loop), slerp in z (w for StyleGAN models) with ease-in-out. A recipe JSON is written beside the "
        "clip; --recipe renders it again."
    )
    parser.add_argument(
        "--model", help="catalog id, weights file path, or run:NAME[@STEP] (default with --faces: the faces' model)"
    )
    parser.add_argument("--walk", choices=WALKS, help="keyframes (default), sweep, circle or noise-loop")
    parser.add_argument(
        "--seeds",
        help="keyframe seeds in order, e.g. 1,7,42 (with --grid: keyframe by keyframe); a sweep's face or a loop's "
        "seed, one per walk",
    )
    parser.add_argument(
        "--faces",
        metavar="A.png,B.png",
        help="faces saved by facegen (edits included) as keyframes, after any --seeds; or the face a sweep goes through",
    )
    parser.add_argument(
        "--direction", metavar="NAME", help="the direction a sweep moves along (see `facegen directions`)"
    )
    parser.add_argument("--amount", type=float, help=f"a sweep runs from -A to +A (default {DEFAULT_SWEEP_AMOUNT:g})")
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
    parser.add_argument("--psi", type=float, help="truncation psi in [0, 2] (default 1: none, or the first face's)")
    parser.add_argument("--cutoff", type=int, metavar="K", help="apply psi to the first K ws only (StyleGAN)")
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
    parser.add_argument("--batch", type=positive_int, default=16, help="images per forward pass")
    add_device_options(parser)
    parser.add_argument("--out", action="append", required=True, help="walk.mp4 and/or walk.gif; repeat for both")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # everything cheap is checked before the model loads, so typos fail in milliseconds
    out_paths = check_clip_outputs(args.out)
    device = checked_device(args)
    faces: list[Face] = []
    if args.recipe:
        recipe = _replayed_recipe(args)
        model_spec = args.model or recipe.model
    else:
        _check_walk_options(args)
        faces = [Face.from_png(path) for path in _split_paths(args.faces)]
        model_spec = args.model or (faces[0].model if faces else None)
        if not model_spec:
            raise FacegenError("Name a model with --model (catalog id, weights file or run:NAME), or give --recipe.")
        # a sweep's direction comes from the model's cache, so its recipe is complete only once the model is loaded
        recipe = None if args.walk == "sweep" else _recipe_from_options(args, model_spec, faces, args.space or "z")
    with download_bar(model_spec) as progress:
        if args.recipe:
            generator = load_recorded_generator(
                model_spec, recipe.model_sha256, f"the recipe {args.recipe}", str(device), progress
            ).set_precision(args.precision)
        else:
            generator = load_generator_for(args, model_spec, device, progress)
    if not args.recipe:
        # a 64 px model makes 256 px faces unless --upscale says otherwise
        default_upscale = suggested_upscale(generator.resolution)
        recipe = _recipe_from_options(
            args, model_spec, faces, _default_space(args, generator), _sweep(args, generator), default_upscale
        )
    recipe = recipe_for_generator(recipe, generator)
    keep_recipe_checkpoint(generator.identity.spec)
    with frame_bar(out_paths[0].name) as progress:
        result = render_clip(generator, recipe, out_paths, progress=progress, batch_size=args.batch)
    width, height = result.frame_size
    if recipe.keyframe_seeds:
        kind = "loop" if recipe.walk in LOOP_WALKS else "keyframe"
        print(f"{kind} seeds: {','.join(map(str, recipe.keyframe_seeds))}", file=sys.stderr)
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


def _check_walk_options(args: argparse.Namespace) -> None:
    """Options that do not shape the chosen walk are refused rather than silently ignored."""
    walk = args.walk or "keyframes"
    if walk == "sweep" and not args.direction:
        raise FacegenError(
            "A direction sweep needs --direction NAME (list this model's with `python -m facegen directions "
            "--model M --list`, or find some with --method sefa)."
        )
    if walk != "sweep" and (args.direction or args.amount is not None):
        raise FacegenError("--direction and --amount shape a sweep only; add --walk sweep or drop them.")
    if walk != "keyframes" and (args.interpolation or args.random_keyframes is not None):
        raise FacegenError(f"--interpolation and --random-keyframes shape keyframe walks, not a {walk}; drop them.")
    if walk in LOOP_WALKS and args.easing:
        raise FacegenError(f"A {walk} loop runs at a constant pace; drop --easing.")


def _split_paths(text: str | None) -> list[str]:
    paths = [path.strip() for path in (text or "").split(",") if path.strip()]
    if text is not None and not paths:
        raise FacegenError("--faces names no file; give facegen PNGs, e.g. --faces a.png,b.png.")
    return paths


def _default_space(args: argparse.Namespace, generator: Generator) -> str:
    if args.space:
        return args.space
    return "w" if generator.has_w_space and args.walk not in LOOP_WALKS else "z"


def _sweep(args: argparse.Namespace, generator: Generator) -> MoveAlong | None:
    if args.walk != "sweep":
        return None
    amount = DEFAULT_SWEEP_AMOUNT if args.amount is None else args.amount
    return move_along(find_direction(generator, args.direction), amount)


def _recipe_from_options(
    args: argparse.Namespace,
    model_spec: str,
    faces: list[Face],
    space: str,
    sweep: MoveAlong | None = None,
    default_upscale: int | None = None,
) -> ClipRecipe:
    walk = args.walk or "keyframes"
    rows, cols = _parse_grid(args.grid) if args.grid else (1, 1)
    seeds = parse_seeds(args.seeds) if args.seeds else []
    if args.random_keyframes is not None:
        seeds = fill_keyframe_seeds(seeds, args.random_keyframes, rows * cols)
    elif walk != "keyframes" and not seeds and not faces:
        seeds = random_seeds(rows * cols)
    elif not seeds and not faces:
        raise FacegenError(
            "Give keyframe seeds with --seeds (e.g. 1,7,42), faces with --faces a.png,b.png, or random seeds with "
            "--random-keyframes N."
        )
    fps = 30 if args.fps is None else args.fps
    frames_per_transition = args.frames_per_transition
    if args.seconds is None and frames_per_transition is None:
        default_seconds = DEFAULT_LOOP_SECONDS if walk in LOOP_WALKS else DEFAULT_SECONDS_PER_TRANSITION
        frames_per_transition = seconds_to_frames_per_transition(default_seconds, fps)
    first_face = faces[0] if faces else None
    options = {
        "interpolation": args.interpolation,
        "easing": args.easing,
        "loop": True if walk in LOOP_WALKS else args.loop,
        "truncation_psi": args.psi if args.psi is not None or not first_face else first_face.truncation_psi,
        "truncation_cutoff": args.cutoff if args.cutoff is not None or not first_face else first_face.truncation_cutoff,
        "noise_mode": args.noise_mode or (first_face.noise_mode if first_face else None),
        "conditioning": args.class_index,
        "upscale": args.upscale or default_upscale,
        "upscale_filter": args.upscale_filter,
        "seed_labels": args.labels,
    }
    return ClipRecipe(
        model=model_spec,
        keyframe_seeds=tuple(seeds),
        walk=walk,
        keyframe_faces=tuple(FaceKeyframe(len(seeds) + index, face) for index, face in enumerate(faces)),
        sweep=sweep,
        space=space,
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
