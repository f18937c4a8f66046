"""`python -m facegen`: argument parsing only. Each command module adds its subparser and calls the library."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import NoReturn

from facegen.errors import FacegenError

# one module per command, each with `add_parser(subparsers)` that sets `run=` on its parser
COMMAND_MODULES = ("models", "fetch", "sample", "video", "train", "metrics", "edit", "directions", "project")


class OneLineParser(argparse.ArgumentParser):
    """argparse, except that a bad option is one line saying what is wrong and where help is, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}. See `{self.prog} --help`.\n")


class CommandParser(OneLineParser):
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


def positive_int(text: str) -> int:
    """An option's value that must be a whole number of at least 1 (a batch size)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="facegen", description="Face GAN studio: sample, train, render.")
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
