"""`facegen models`: the catalog with each model's availability and licence, then own training runs."""

from __future__ import annotations

import argparse

from facegen.registry import install_check, list_model_choices, load_catalog


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    rows = [("ID", "STATE", "RES", "FAMILY", "SIZE, PATH OR REASON")]
    notes: list[list[str]] = [[]]
    for choice in list_model_choices():
        entry = catalog.get(choice.spec) if choice.is_catalog else None
        resolution, family = (str(entry.resolution), entry.family) if entry else ("", "own run")
        rows.append((choice.spec, choice.state, resolution, family, choice.detail))
        licence = [f"licence: {choice.license}"] if choice.license else []
        notes.append(licence + ([f"check: {install_check(entry)}"] if entry else []))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row, row_notes in zip(rows, notes):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
        for note in row_notes:
            print(f"    {note}")
    return 0
