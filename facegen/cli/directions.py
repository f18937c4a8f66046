"""`facegen directions`: find latent directions of a model (SeFa, PCA, labelled seeds) and manage its cache."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tqdm import tqdm

from facegen.cli.progress import download_bar
from facegen.editing.directions import (
    Direction,
    delete_direction,
    export_directions,
    fit_labelled_direction,
    import_directions,
    load_directions,
    pca_directions,
    rename_direction,
    save_directions,
    sefa_directions,
)
from facegen.editing.face import Face
from facegen.editing.layers import format_layers, parse_layers
from facegen.errors import FacegenError
from facegen.latent import parse_seeds
from facegen.registry import load_generator

METHODS = ("sefa", "pca", "labelled")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Compute directions and cache them for the model file, or manage the cache. Use them with "
        "`facegen edit --direction NAME=AMOUNT`."
    )
    parser.add_argument("--model", required=True, help="catalog id, weights file path, or run:NAME[@STEP]")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--method",
        choices=METHODS,
        help="sefa: closed form from the weights; pca: of sampled "
        "latents; labelled: a boundary between --with and --without seeds",
    )
    action.add_argument("--list", action="store_true", help="list this model's cached directions")
    action.add_argument("--export", metavar="FILE.safetensors", help="write directions (all, or --names) to a file")
    action.add_argument(
        "--import", dest="import_file", metavar="FILE.safetensors", help="add an exported file's directions"
    )
    action.add_argument("--rename", metavar="OLD=NEW", help="rename a cached direction")
    action.add_argument("--delete", metavar="NAME", help="remove a cached direction")
    parser.add_argument("--layers", metavar="A-B", help="StyleGAN layers the directions are found on and apply to")
    parser.add_argument("--k", type=int, default=20, help="how many directions (sefa, pca; default 20)")
    parser.add_argument("--n", type=int, default=20000, help="sampled latents (pca; default 20000)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (pca)")
    parser.add_argument("--name", help="the labelled direction's name")
    parser.add_argument("--with", dest="with_seeds", metavar="SEEDS", help="seeds of faces with the attribute")
    parser.add_argument("--without", dest="without_seeds", metavar="SEEDS", help="seeds of faces without it")
    parser.add_argument("--names", help="comma-separated directions to export (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise FacegenError(f"--k {args.k}: ask for at least one direction.")
    rename = _split_rename(args.rename) if args.rename else None
    if args.method == "labelled" and not (args.name and args.with_seeds and args.without_seeds):
        raise FacegenError("--method labelled needs --name NAME, --with SEEDS and --without SEEDS.")
    with download_bar(args.model) as progress:
        generator = load_generator(args.model, device=args.device, progress=progress)
    layers = parse_layers(args.layers, generator.num_ws, "--layers") if args.layers and generator.has_w_space else None
    if args.layers and not generator.has_w_space:
        raise FacegenError(
            f"Model {generator.info.model_id} ({generator.info.family}) has no style layers; leave --layers unset."
        )
    if args.method:
        if args.method == "sefa":
            found = sefa_directions(generator, layers, args.k)
        elif args.method == "pca":
            with tqdm(total=1, desc="PCA", unit="batch", leave=False) as bar:
                found = pca_directions(generator, args.k, args.n, layers, args.seed, progress=_advance(bar))
        else:
            with_faces = [Face.from_seed(generator, seed) for seed in parse_seeds(args.with_seeds)]
            without_faces = [Face.from_seed(generator, seed) for seed in parse_seeds(args.without_seeds)]
            found = [fit_labelled_direction(generator, args.name, with_faces, without_faces)]
        save_directions(generator, found)
        _print_table(found)
    elif args.list:
        _print_table(list(load_directions(generator).values()))
    elif args.export:
        names = [name.strip() for name in args.names.split(",")] if args.names else None
        print(export_directions(generator, args.export, names))
    elif args.import_file:
        _print_table(import_directions(generator, args.import_file))
    elif rename:
        print(rename_direction(generator, *rename).name)
    else:
        delete_direction(generator, args.delete)
    return 0


def _advance(bar: tqdm):
    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update


def _split_rename(text: str) -> tuple[str, str]:
    old, equals, new = text.partition("=")
    if not equals or not old or not new:
        raise FacegenError(f"Bad --rename {text!r}: write OLD=NEW.")
    return old, new


def _print_table(directions: Sequence[Direction]) -> None:
    if not directions:
        print("no directions yet: compute some with --method sefa or --method pca")
        return
    rows = [("NAME", "METHOD", "SPACE", "STRENGTH", "LAYERS", "ACCURACY")]
    for direction in directions:
        layers = format_layers(direction.layers) if direction.layers else "all"
        accuracy = f"{direction.accuracy:.0%}" if direction.accuracy is not None else ""
        rows.append((direction.name, direction.method, direction.space, f"{direction.strength:.4g}", layers, accuracy))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
