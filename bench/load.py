"""Load time of a catalog model: the first load (read the foreign file, convert, save) against later loads of the
converted safetensors, and against reading the foreign file every time (what loading cost before convert-once).

Run: python bench/load.py   (from the repository root; no network: every file is made or found locally)
Each model is installed into a private cache with `fetch --from` semantics, so the timings include what a user's
load includes: verifying the file's sha256, reading it, building the network.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tomli_w  # noqa: E402

from bench.common import best_seconds  # noqa: E402
from facegen import formats, registry  # noqa: E402
from tests.formats import progan_fixtures  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3


def progan_celebahq_shaped(folder: Path) -> Path:
    """A Gs-only TF ProGAN pickle with the CelebA-HQ network's shapes (1024, 23.1 M parameters, random values)."""
    variables = progan_fixtures.tf_progan_variables(resolution=1024, z_dim=512, fmap_base=8192, fmap_max=512)
    return progan_fixtures.write_tf_progan(folder / "progan-celebahq-shaped.pkl", variables, condensed=True)


def nvidia_sg2_fixture(folder: Path) -> Path:
    return Path(shutil.copyfile(REPO_ROOT / "tests" / "fixtures" / "nvidia" / "sg2.pkl", folder / "sg2.pkl"))


def digiface_dcgan(folder: Path) -> Path:
    return Path(shutil.copyfile(registry.fetch_model("digiface-dcgan64"), folder / "weights.tar"))


CASES: list[tuple[str, str, Callable[[Path], Path], bool]] = [
    # (label, catalog format, file maker, available)
    ("ProGAN CelebA-HQ shape, TF pickle", "tf-progan", progan_celebahq_shaped, True),
    (
        "NVIDIA StyleGAN2 fixture sg2.pkl",
        "nvidia-pickle",
        nvidia_sg2_fixture,
        importlib.util.find_spec("facegen.formats.nvidia_stylegan2") is not None,
    ),
    ("DigiFace DCGAN 64, torch .tar", "torch-dcgan", digiface_dcgan, True),
]


def measure(label: str, format_name: str, make_file: Callable[[Path], Path]) -> tuple[float, float, float, int]:
    catalog_path, cache = registry.CATALOG_PATH, os.environ.get("FACEGEN_CACHE")
    try:
        return _measure_in_private_cache(label, format_name, make_file)
    finally:
        registry.CATALOG_PATH = catalog_path
        if cache is None:
            os.environ.pop("FACEGEN_CACHE", None)
        else:
            os.environ["FACEGEN_CACHE"] = cache


def _measure_in_private_cache(
    label: str, format_name: str, make_file: Callable[[Path], Path]
) -> tuple[float, float, float, int]:
    with tempfile.TemporaryDirectory(prefix="facegen-bench-load-") as folder:
        folder = Path(folder)
        source = make_file(folder)
        catalog = folder / "catalog.toml"
        entry_table = {
            "title": label, "family": "bench", "format": format_name, "resolution": 4, "z_dim": 1,
            "filename": source.name, "license": "bench",
        }  # fmt: skip
        catalog.write_text(tomli_w.dumps({"models": {"bench": entry_table}}))
        registry.CATALOG_PATH = catalog
        os.environ["FACEGEN_CACHE"] = str(folder / "cache")
        registry.install_from_file("bench", source)
        entry = registry.catalog_entry("bench")
        start = time.perf_counter()
        registry.load_catalog_model(entry)
        first = time.perf_counter() - start
        converted = best_seconds(lambda: registry.load_catalog_model(entry), REPEATS, warmup=0)
        # before convert-once, every load verified the source file and read it
        every_time = best_seconds(
            lambda: formats.load_weights(registry.fetch_model("bench"), "bench", format_name=format_name),
            REPEATS,
            warmup=0,
        )
        return first, converted, every_time, source.stat().st_size


def main() -> None:
    print(
        f"{'model':38} {'file MB':>8} {'first load s':>13} {'converted s':>12} {'foreign each time s':>20} "
        f"{'speed-up':>9}"
    )
    for label, format_name, make_file, available in CASES:
        if not available:
            print(f"{label:38} (skipped: its reader is not in this checkout)")
            continue
        first, converted, every_time, size = measure(label, format_name, make_file)
        print(
            f"{label:38} {size / 1e6:8.1f} {first:13.3f} {converted:12.3f} {every_time:20.3f} "
            f"{every_time / converted:8.1f}x"
        )


if __name__ == "__main__":
    main()
