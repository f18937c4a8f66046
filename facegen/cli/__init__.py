"""`python -m facegen`: argument parsing only. Each command module adds its subparser and calls the library."""

from __future__ import annotations

import argparse
import importlib
import sys

from facegen.errors import FacegenError

# one module per command, each with `add_parser(subparsers)` that sets `run=` on its parser
COMMAND_MODULES = ("models", "fetch", "sample", "video", "train", "metrics", "project")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m facegen", description="Face GAN studio: sample, train, render.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"facegen.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except FacegenError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
