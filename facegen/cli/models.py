"""`facegen models`: the catalog with each model's availability."""

from __future__ import annotations

import argparse

from facegen.registry import load_catalog, model_status


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list catalog models and whether they are cached")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rows = [("ID", "STATE", "RES", "FAMILY", "DETAIL")]
    for entry in load_catalog().values():
        status = model_status(entry)
        rows.append((entry.model_id, status.state, str(entry.resolution), entry.family, status.detail))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    return 0
