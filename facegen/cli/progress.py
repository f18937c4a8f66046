"""Terminal progress bars that fit the library's progress callbacks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

from facegen.hub import ProgressCallback


@contextmanager
def download_bar(description: str) -> Iterator[ProgressCallback]:
    """A byte-counting bar for `hub.ProgressCallback`, shown only once a download actually starts."""
    bars: list[tqdm] = []

    def update(done: int, total: int | None) -> None:
        if not bars:
            bars.append(tqdm(desc=description, unit="B", unit_scale=True, unit_divisor=1024, leave=False))
        bar = bars[0]
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()
