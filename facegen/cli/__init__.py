"""`python -m facegen`: argument parsing only. Each command module adds its subparser and calls the library."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from facegen.errors import FacegenError

# one module per command, each with `add_parser(subparsers)` that sets `run=` on its parser
COMMAND_MODULES = ("models", "fetch", "sample", "video", "train", "metrics", "edit", "directions", "project")


class CommandParser(argparse.ArgumentParser):
    """A command's parser that can add options only when the command is parsed or its help shown, so running
    another command does not import what those options are made from (`train`'s come from the model files)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list[Callable[[argparse.ArgumentParser], None]] = []

    def add_options_when_used(self, add_options: Callable[[argparse.ArgumentParser], None]) -> None:
        self._deferred.append(add_options)

    def _add_deferred_options(self) -> None:
        while self._deferred:
            self._deferred.pop(0)(self)

    def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201 - argparse's signature
        self._add_deferred_options()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._add_deferred_options()
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m facegen", description="Face GAN studio: sample, train, render.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)
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
