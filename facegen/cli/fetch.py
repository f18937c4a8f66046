"""`facegen fetch ID [--from PATH]`: download a catalog model into the cache, or install a file you have."""

from __future__ import annotations

import argparse

from facegen.cli.progress import download_bar
from facegen.registry import fetch_model, install_from_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_id", help="catalog id, see `python -m facegen models`")
    parser.add_argument("--from", dest="from_path", metavar="PATH", help="install this local file instead of downloading")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.from_path:
        path = install_from_file(args.model_id, args.from_path)
    else:
        with download_bar(args.model_id) as progress:
            path = fetch_model(args.model_id, progress)
    print(f"{args.model_id}: {path}")
    return 0
