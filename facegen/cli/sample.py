"""`facegen sample`: faces for seeds, as one grid or one PNG per seed."""

from __future__ import annotations

import argparse

from facegen.cli import positive_int
from facegen.cli.device import add_device_options, checked_device, load_generator_for
from facegen.cli.progress import download_bar
from facegen.generator import NOISE_MODES, check_noise_mode, check_truncation_psi
from facegen.images import check_output_target
from facegen.latent import parse_seeds
from facegen.sampling import SampleRequest, render_and_save
from facegen.train.runs import keep_recipe_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="catalog id, weights file path, or run:NAME[@STEP]")
    parser.add_argument("--seeds", required=True, help="e.g. 0-15, 1,7,42 or 0-3,42")
    parser.add_argument("--psi", type=float, default=1.0, help="truncation psi in [0, 2] (default 1: none)")
    parser.add_argument("--cutoff", type=int, metavar="K", help="apply psi to the first K ws only (StyleGAN)")
    parser.add_argument("--noise-mode", default="const", choices=NOISE_MODES)
    parser.add_argument("--class", dest="class_index", type=int, help="class index for conditional networks")
    parser.add_argument("--batch", type=positive_int, default=16, help="images per forward pass")
    add_device_options(parser)
    parser.add_argument("--out", required=True, help="grid.png for one grid, or DIR/ for one PNG per seed")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # validate everything cheap before loading a model, so typos fail in milliseconds
    request = SampleRequest(
        model_spec=args.model,
        seeds=parse_seeds(args.seeds),
        truncation_psi=check_truncation_psi(args.psi),
        noise_mode=check_noise_mode(args.noise_mode),
        labels=args.class_index,
        truncation_cutoff=args.cutoff,
    )
    check_output_target(args.out)
    device = checked_device(args)
    with download_bar(args.model) as progress:
        generator = load_generator_for(args, args.model, device, progress)
    keep_recipe_checkpoint(generator.identity.spec)
    for path in render_and_save(generator, request, args.out, batch_size=args.batch):
        print(path)
    return 0
