"""`python -m facegen`: argument parsing only. Each command module adds its options and calls the library.

A command's module, and the library it calls, is imported only when that command is parsed or its help shown:
`facegen --help` imports no command, and `facegen sample` none of the editing, projection, video or metrics
code (tests/test_cli_startup.py holds it to that).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from facegen.errors import FacegenError

# command: its line in `facegen --help`. Each command is a module, `facegen.cli.COMMAND`, whose
# `add_arguments(parser)` adds the command's options (and description) and sets `run=` on its parser.
COMMANDS: dict[str, str] = {
    "models": "list catalog models (cached, downloadable with size, or why not)",
    "fetch": "download a catalog model into the cache (verified)",
    "sample": "render faces for seeds to PNG",
    "video": "render a latent walk (keyframes, a direction sweep, a seamless loop) to MP4/GIF",
    "train": "train a face GAN into a run directory",
    "metrics": "FID/KID of a model against real images",
    "edit": "render one edited face to a PNG that carries its recipe",
    "directions": "find latent directions (SeFa, PCA, labelled) and list, rename, export or import them",
    "project": "find the latent of a face in a photo (detect, align, optimise)",
    "align": "detect the face in a photo and align it as FFHQ was aligned",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse, except that a bad option is one line saying what is wrong and where help is, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}. See `{self.prog} --help`.\n")


class CommandParser(OneLineParser):
    """A command's parser, whose module (`facegen.cli.COMMAND`) adds its options only when the command is parsed or
    its help shown: running one command imports neither the other commands nor the library beneath them."""

    def __init__(self, *args, command_module: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.command_module = command_module
        self._options_added = False

    def _add_options(self) -> None:
        if not self._options_added:
            self._options_added = True
            importlib.import_module(self.command_module).add_arguments(self)

    def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201 - argparse's signature
        self._add_options()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._add_options()
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
    for name, summary in COMMANDS.items():
        subparsers.add_parser(name, help=summary, command_module=f"facegen.cli.{name}")
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
