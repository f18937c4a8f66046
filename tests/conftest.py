"""Shared test set-up: one model cache per checkout, the tiny test model, and skips for tests that need the index.

Tests that only need *a* model use `tiny_model`, a random-weight DCGAN in tests/fixtures/, so the suite runs with no
network. The few tests that need real weights from the package index are marked `needs_package_index`; when facegen
reports the index unreachable they are skipped, with facegen's message as the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("FACEGEN_CACHE", str(REPO_ROOT / ".cache" / "facegen"))
TINY_DCGAN_PATH = REPO_ROOT / "tests" / "fixtures" / "tiny-dcgan64.safetensors"


@pytest.fixture(scope="session")
def tiny_model():
    """A 64x64 DCGAN with random weights (z_dim 100) from tests/fixtures/: it draws noise with contrast."""
    from facegen.registry import load_generator

    return load_generator(str(TINY_DCGAN_PATH))


@pytest.fixture(scope="session")
def shipped_dcgan():
    """The shipped pretrained DCGAN (digiface-dcgan64), fetched from the package index once per checkout."""
    from facegen.registry import load_generator

    return load_generator("digiface-dcgan64")


def skip_if_the_index_is_unreachable(item: pytest.Item, error: Exception) -> None:
    from facegen.errors import FetchError
    from facegen.hub import PACKAGE_INDEX_UNREACHABLE

    needs_index = item.get_closest_marker("needs_package_index") is not None
    if needs_index and isinstance(error, FetchError) and PACKAGE_INDEX_UNREACHABLE in str(error):
        pytest.skip(f"needs the package index: {error}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    try:
        return (yield)
    except Exception as error:
        skip_if_the_index_is_unreachable(item, error)
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    try:
        return (yield)
    except Exception as error:
        skip_if_the_index_is_unreachable(item, error)
        raise


def run_cli(*args: str, cwd: Path = REPO_ROOT, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m facegen ARGS` as a user would; returns the completed process (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "facegen", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
