"""`facegen edit`: one face from a seed or a saved PNG, with style mixing, truncation cutoff, camera, directions."""

from __future__ import annotations

import argparse
from pathlib import Path

from facegen.cli.progress import download_bar
from facegen.editing.directions import find_direction, move_along
from facegen.editing.face import Camera, Face, SetAttribute, SetClass, StyleMix, check_face, require_style_layers
from facegen.editing.layers import parse_layers
from facegen.editing.render import FaceRenderer
from facegen.errors import FacegenError
from facegen.generator import NOISE_MODES, Generator, check_truncation_psi
from facegen.images import check_output_target, png_bytes, write_atomically
from facegen.registry import load_generator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Render one face: from --seed, or from a facegen PNG (--from) whose recipe is restored, then "
        "apply the edits given, in this order: style mixing, directions, attributes, class, camera. LAYERS are "
        "0-based and inclusive: A-B, a list 0,2,5, or a preset coarse, middle, fine."
    )
    parser.add_argument(
        "--model",
        help="catalog id, weights file path, or run:NAME[@STEP] (default with --from: the model the PNG names)",
    )
    start = parser.add_mutually_exclusive_group(required=True)
    start.add_argument("--seed", type=int, help="the face's seed")
    start.add_argument("--from", dest="from_png", metavar="FACE.png", help="start from a face saved by facegen")
    parser.add_argument("--psi", type=float, help="truncation psi in [0, 2] (default 1: none)")
    parser.add_argument("--cutoff", type=int, metavar="K", help="apply psi to the first K ws only (StyleGAN)")
    parser.add_argument("--class", dest="class_index", type=int, help="class index for conditional networks")
    parser.add_argument("--noise-mode", choices=NOISE_MODES, help="StyleGAN2 noise (default const)")
    parser.add_argument(
        "--mix",
        action="append",
        default=[],
        metavar="SEED:LAYERS",
        help="take the styles of LAYERS from another seed (or FACE.png:LAYERS); repeatable",
    )
    parser.add_argument(
        "--direction",
        action="append",
        default=[],
        metavar="NAME=AMOUNT[@LAYERS]",
        help="move along a cached direction (see `facegen directions`); repeatable",
    )
    parser.add_argument(
        "--keep-fixed",
        action="append",
        default=[],
        metavar="NAME",
        help="keep the face still along this direction while moving along the others",
    )
    parser.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="NAME=0|1",
        help="switch an attribute of an attribute-conditioned model off or on; repeatable",
    )
    parser.add_argument("--translate", metavar="TX,TY", help="StyleGAN3 camera translation, e.g. 0.2,-0.1")
    parser.add_argument("--rotate", type=float, metavar="DEG", help="StyleGAN3 camera rotation in degrees")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--out", required=True, help="face.png")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # everything cheap is checked before the model loads, so typos fail in milliseconds
    if not args.out.lower().endswith(".png"):
        raise FacegenError(f"Output {args.out!r} must be a .png file.")
    check_output_target(args.out)
    if args.psi is not None:
        check_truncation_psi(args.psi)
    translate = _parse_translate(args.translate)
    directions = [_split_direction(text) for text in args.direction]
    attributes = [_split_attribute(text) for text in args.attribute]
    mixes = [_split_mix(text) for text in args.mix]
    start = Face.from_png(args.from_png) if args.from_png else None
    model_spec = args.model or (start.model if start else None)
    if model_spec is None:
        raise FacegenError("Give --model (or --from a facegen PNG, which names its model).")

    with download_bar(model_spec) as progress:
        generator = load_generator(model_spec, device=args.device, progress=progress)
    if start is None:
        face = Face.from_seed(
            generator,
            args.seed,
            truncation_psi=1.0 if args.psi is None else args.psi,
            truncation_cutoff=args.cutoff,
            noise_mode=args.noise_mode or "const",
            labels=args.class_index,
        )
    else:
        check_face(start, generator, args.from_png)
        overrides = {"truncation_psi": args.psi, "truncation_cutoff": args.cutoff, "noise_mode": args.noise_mode}
        face = start.replace(**{key: value for key, value in overrides.items() if value is not None})
        if args.class_index is not None:
            face = face.with_edits(SetClass(args.class_index))
    for donor, layers_text in mixes:
        require_style_layers(generator, "style mixing")
        layers = parse_layers(layers_text, generator.num_ws, "Style mixing")
        if isinstance(donor, int):
            face = face.with_edits(StyleMix(layers, seed=donor))
        else:
            face = face.with_edits(StyleMix(layers, face=Face.from_png(donor)))
    kept = [find_direction(generator, name) for name in args.keep_fixed]
    for name, amount, layers_text in directions:
        layers = None
        if layers_text is not None:
            require_style_layers(generator, f"a layer range for direction {name!r}")
            layers = parse_layers(layers_text, generator.num_ws, f"Direction {name!r}")
        face = face.with_edits(move_along(find_direction(generator, name), amount, layers, kept))
    face = face.with_edits(*(SetAttribute(name, value) for name, value in attributes))
    if translate is not None or args.rotate is not None:
        face = face.with_edits(Camera(translate or (0.0, 0.0), args.rotate or 0.0))
    print(_write_face(generator, face, Path(args.out)))
    return 0


def _write_face(generator: Generator, face: Face, out: Path) -> Path:
    image = FaceRenderer(generator).render(face)  # checks the whole recipe before anything is written
    write_atomically(out, png_bytes(image, face.to_dict()))
    return out


def _parse_translate(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        x, y = (float(part) for part in text.split(","))
    except ValueError:
        raise FacegenError(f"Bad --translate {text!r}: write TX,TY, e.g. 0.2,-0.1.") from None
    return x, y


def _split_direction(text: str) -> tuple[str, float, str | None]:
    name, equals, rest = text.partition("=")
    amount_text, at, layers_text = rest.partition("@")
    try:
        amount = float(amount_text)
    except ValueError:
        amount = None
    if not equals or not name or amount is None or (at and not layers_text):
        raise FacegenError(f"Bad --direction {text!r}: write NAME=AMOUNT or NAME=AMOUNT@LAYERS, e.g. sefa-00=3@0-3.")
    return name, amount, layers_text if at else None


def _split_attribute(text: str) -> tuple[str, float]:
    name, equals, value = text.partition("=")
    if not equals or not name or value not in ("0", "1"):
        raise FacegenError(f"Bad --attribute {text!r}: write NAME=1 (on) or NAME=0 (off), e.g. Smiling=1.")
    return name, float(value)


def _split_mix(text: str) -> tuple[int | str, str]:
    donor, colon, layers_text = text.rpartition(":")
    if not colon or not donor or not layers_text:
        raise FacegenError(f"Bad --mix {text!r}: write SEED:LAYERS or FACE.png:LAYERS, e.g. 11:0-3 or 11:coarse.")
    if donor.isdigit():
        return int(donor), layers_text
    if not donor.lower().endswith(".png"):
        raise FacegenError(f"Bad --mix {text!r}: the styles come from a seed or a facegen PNG, not {donor!r}.")
    return donor, layers_text
