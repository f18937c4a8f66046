"""A command imports what it runs and nothing more: `facegen sample` starts without the editing, projection, video
and metrics code (nor scipy, which face alignment needs), and `facegen --help` answers without torch."""

import json
import os
import subprocess
import sys
from pathlib import Path

from facegen.cli import COMMANDS
from tests.conftest import REPO_ROOT, TINY_DCGAN_PATH

# what other commands need and `sample` does not, each a module together with its submodules
NOT_NEEDED_BY_SAMPLE = (
    "scipy",
    "imageio_ffmpeg",
    "facegen.editing",
    "facegen.faces",
    "facegen.projection",
    "facegen.video",
    "facegen.metrics",
)
# `python -m facegen ARGS`, which lists on its last line of stderr every module loaded when it exits
# (-X importtime would miss the command modules, which importlib imports)
RUN_LISTING_MODULES = """
import atexit, json, runpy, sys
atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv[0] = "facegen"
runpy.run_module("facegen", run_name="__main__", alter_sys=True)
"""


def run_listing_modules(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """`python -m facegen ARGS` and the modules it imported."""
    result = subprocess.run(
        [sys.executable, "-c", RUN_LISTING_MODULES, *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result, set(json.loads(result.stderr.splitlines()[-1]))


def within(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(module for module in modules if any(module == p or module.startswith(p + ".") for p in packages))


def commands_imported(modules: set[str]) -> list[str]:
    return sorted(name for name in COMMANDS if f"facegen.cli.{name}" in modules)


def test_sample_imports_none_of_what_other_commands_need(tmp_path: Path):
    out = tmp_path / "faces"
    _, modules = run_listing_modules("sample", "--model", str(TINY_DCGAN_PATH), "--seeds", "0-3", "--out", f"{out}/")
    assert sorted(path.name for path in out.iterdir()) == [f"seed000{seed}.png" for seed in range(4)]
    assert within(modules, NOT_NEEDED_BY_SAMPLE) == []
    assert commands_imported(modules) == ["sample"]


def test_help_lists_every_command_without_importing_torch_or_any_command():
    result, modules = run_listing_modules("--help")
    assert all(name in result.stdout for name in COMMANDS)
    assert within(modules, ("torch", "numpy")) == []
    assert commands_imported(modules) == []


def test_a_commands_help_imports_that_command_only():
    result, modules = run_listing_modules("sample", "--help")
    assert "--seeds" in result.stdout and "--precision" in result.stdout
    assert commands_imported(modules) == ["sample"]
    assert within(modules, NOT_NEEDED_BY_SAMPLE) == []
