"""The README's commands, pasted in order into a shell in a fresh folder outside the checkout after the README's
install, all succeed. The commands are read from the README's code blocks, so changing the README changes the test;
only sizes are shrunk (steps, image counts, seconds) to keep it quick."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from facegen.registry import fetch_model
from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
# (pattern, replacement): the same commands, smaller
SMALLER = (
    (r"--steps \d+", "--steps 20"),
    (r"--n \d+", "--n 50"),
    (r"--seconds \d+", "--seconds 1"),
    (r"demo:digiface-reference\b", "demo:digiface-reference?n=50"),
    (r"demo:digiface(?=\s)", "demo:digiface?n=200"),
)


def readme_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)


def readme_commands() -> list[str]:
    """Every `facegen ...` line of the README's shell blocks, in order."""
    return [line.strip() for block in readme_blocks() for line in block.splitlines() if line.startswith("facegen ")]


def smaller(command: str) -> str:
    for pattern, replacement in SMALLER:
        command = re.sub(pattern, replacement, command)
    return command


def install_as_documented(venv: Path) -> Path:
    """The README's `pip install -e .` into a new environment, reusing this one's installed dependencies instead of
    downloading PyTorch again; returns the environment's bin folder."""
    install = next(block for block in readme_blocks() if "pip install" in block)
    assert "pip install -e ." in install, "the README installs the checkout as a package"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site_packages / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", "."],
        cwd=REPO_ROOT, check=True,
    )  # fmt: skip
    return venv / "bin"


@pytest.mark.slow
@pytest.mark.needs_package_index
def test_readme_commands_run_as_pasted_from_another_folder(tmp_path):
    # the README's commands draw the shipped DCGAN: without the package index this skips here, as the other tests
    # that need downloaded weights do, instead of failing in a subprocess
    fetch_model("digiface-dcgan64")
    commands = readme_commands()
    assert commands[0] == "facegen models" and any(command.startswith("facegen train ") for command in commands)
    bin_folder = install_as_documented(tmp_path / "venv")
    elsewhere = tmp_path / "my-faces"
    elsewhere.mkdir()
    environment = {**os.environ, "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}"}
    environment.pop("PYTHONPATH", None)
    environment.pop("FACEGEN_RUNS", None)
    for command in commands:
        done = subprocess.run(
            smaller(command), shell=True, cwd=elsewhere, env=environment, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    made = {path.relative_to(elsewhere).as_posix() for path in elsewhere.rglob("*") if path.is_file()}
    expected = {"grid.png", "faces/seed0007.png", "walk.mp4", "walk.gif", "walk.json", "again.mp4", "scores.json"}
    assert expected | {"runs/first/config.json", "first.png"} <= made
