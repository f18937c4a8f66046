"""A served facegen app and a headless Chromium driving it, for the browser tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from facegen.ui.widgets import CUSTOM_PATH

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served_app(log_path: Path) -> Iterator[str]:
    """`streamlit run streamlit_app.py` on a free loopback port; yields the base URL once /_stcore/health is ok."""
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
        "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while True:
                try:
                    with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
                        if response.read().strip() == b"ok":
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not become healthy; log:\n{log_path.read_text()}")
                time.sleep(0.5)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def chromium_page() -> Iterator[object]:
    """A Playwright page in Debian's headless Chromium."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does this)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            yield page
        finally:
            browser.close()


def pick_weights_file(page, path: Path, timeout_ms: float) -> None:
    """Choose "Weights file path…" in the sidebar's model picker and type `path`, as a user does."""
    sidebar = page.get_by_test_id("stSidebar")
    # the device and precision pickers come first: find the model picker by its label
    model_picker = sidebar.get_by_test_id("stSelectbox").filter(has=page.get_by_text("Model", exact=True))
    model_picker.click(timeout=timeout_ms)
    page.get_by_role("option", name=CUSTOM_PATH).click(timeout=timeout_ms)
    field = sidebar.get_by_label("Path to a .pkl, .safetensors or .pt file")
    field.fill(str(path), timeout=timeout_ms)
    field.press("Enter")
