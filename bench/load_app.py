"""Load on the served app: N browser sessions at once, each sampling 16 faces and rendering the default clip.

Run: python bench/load_app.py [--sessions 12] [--timeout 900] [--local]
A `streamlit run streamlit_app.py` server on a loopback port (public mode unless --local), driven by headless
Chromium through Playwright, one browser context (one Streamlit session) per simulated user. Prints each
session's time to finish, the failures, the server's memory (RSS) at start, after a warm-up session that loads the
model, and after the run once every session has closed, and what the closed sessions left: session folders and
server child processes (ffmpeg encoders). Bounded: at most MAX_SESSIONS sessions and MAX_TIMEOUT_S seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facegen.ui.sessions import CLOSED_GRACE_SECONDS, REAP_EVERY_SECONDS
from tests.app.browser import chromium_executable, served_app

MAX_SESSIONS = 24
MAX_TIMEOUT_S = 1800
FACES = 16
KEYFRAMES = 3
LOADED_IMAGES = """(count) => [...document.querySelectorAll('[data-testid="stImage"] img')]
                                .filter(img => img.complete && img.naturalWidth > 0).length >= count"""
VIDEO_PLAYS = "() => { const v = document.querySelector('video'); return v && v.readyState >= 2; }"
SETTLE_S = CLOSED_GRACE_SECONDS + 3 * REAP_EVERY_SECONDS + 5


def server_pid() -> int:
    """The streamlit server this process started (its only child running streamlit)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == os.getpid() and b"streamlit" in command:
            return int(entry.name)
    raise RuntimeError("no streamlit server among this process's children")


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def child_processes(pid: int) -> list[str]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0].decode() for child in children]


def leftovers(temporary_root: Path) -> tuple[list[Path], list[Path]]:
    """Session folders still in the server's app folder, and any file at all left in its temporary folder."""
    folders = [folder for root in temporary_root.glob("facegen-app-*") for folder in root.iterdir()]
    return folders, [path for path in temporary_root.rglob("*") if path.is_file()]


async def one_user(browser, base_url: str, timeout_ms: int, samples_only: bool = False) -> float:
    """Sample 16 faces, then render the default clip until it plays; seconds taken. Raises on any failure."""
    started = time.monotonic()
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = await context.new_page()
        await page.goto(base_url, timeout=timeout_ms)
        await page.get_by_role("link", name="Sample").click(timeout=timeout_ms)
        await page.wait_for_function(LOADED_IMAGES, arg=FACES + 1, timeout=timeout_ms)
        if not samples_only:
            await page.get_by_role("link", name="Interpolate").click(timeout=timeout_ms)
            await page.wait_for_function(LOADED_IMAGES, arg=KEYFRAMES, timeout=timeout_ms)
            await page.get_by_role("button", name="Render clip").click(timeout=timeout_ms)
            await page.wait_for_function(VIDEO_PLAYS, timeout=timeout_ms, polling=500)
        problems = await page.locator(
            '[data-testid="stException"], [data-testid="stAlertContentError"]'
        ).all_inner_texts()
        if problems:
            raise RuntimeError(f"the page shows an error: {problems[0][:200]}")
        return time.monotonic() - started
    finally:
        await context.close()


async def load(base_url: str, sessions: int, timeout_s: float, server: int) -> tuple[list[float], list[str], float]:
    """Times of the sessions that finished, the failures of the others, and the server's RSS after the warm-up."""
    from playwright.async_api import async_playwright

    timeout_ms = int(timeout_s * 1000)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_executable(), headless=True, args=["--no-sandbox"]
        )
        try:
            warm_up = await one_user(browser, base_url, timeout_ms, samples_only=True)
            warm_rss = rss_mb(server)
            print(f"warm-up session (imports, model load): {warm_up:.1f} s")
            users = asyncio.gather(
                *(one_user(browser, base_url, timeout_ms) for _ in range(sessions)), return_exceptions=True
            )
            results = await asyncio.wait_for(users, timeout_s)
        finally:
            await browser.close()
    times = [result for result in results if isinstance(result, float)]
    failures = [f"{type(result).__name__}: {str(result)[:300]}" for result in results if not isinstance(result, float)]
    return times, failures, warm_rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=12, help=f"browser sessions at once (at most {MAX_SESSIONS})")
    parser.add_argument(
        "--timeout", type=float, default=900, help=f"seconds for the whole run (at most {MAX_TIMEOUT_S})"
    )
    parser.add_argument("--local", action="store_true", help="serve without FACEGEN_PUBLIC=1")
    args = parser.parse_args()
    sessions = max(1, min(args.sessions, MAX_SESSIONS))
    timeout_s = max(30.0, min(args.timeout, MAX_TIMEOUT_S))
    with tempfile.TemporaryDirectory(prefix="facegen-load-") as scratch:
        temporary_root = Path(scratch) / "tmp"
        temporary_root.mkdir()
        os.environ["TMPDIR"] = str(temporary_root)  # the server's session folders land here, to be counted
        if not args.local:
            os.environ["FACEGEN_PUBLIC"] = "1"
        with served_app(Path(scratch) / "streamlit.log") as base_url:
            pid = server_pid()
            at_start = rss_mb(pid)
            started = time.monotonic()
            times, failures, warmed = asyncio.run(load(base_url, sessions, timeout_s, pid))
            wall = time.monotonic() - started
            right_after = rss_mb(pid)
            time.sleep(SETTLE_S)  # closed sessions are reaped after a grace period
            after = rss_mb(pid)
            leftover_folders, leftover_files = leftovers(temporary_root)
            leftover_children = child_processes(pid)
            log_tail = (Path(scratch) / "streamlit.log").read_text()[-2000:]
    print(f"{sessions} sessions ({'local' if args.local else 'public'} mode), each {FACES} faces + the default clip")
    print(f"finished: {len(times)} of {sessions} in {wall:.1f} s wall (incl. warm-up)")
    if times:
        ordered = sorted(times)
        print(
            f"per session: fastest {ordered[0]:.1f} s, median {ordered[len(ordered) // 2]:.1f} s, slowest {ordered[-1]:.1f} s"
        )
    print(f"failures: {len(failures)}")
    for failure in failures:
        print(f"  {failure}")
    print(
        f"server RSS: {at_start:.0f} MB at start, {warmed:.0f} MB after the warm-up (model loaded) = before, "
        f"{right_after:.0f} MB right after the run, {after:.0f} MB {SETTLE_S:.0f} s later (sessions closed and "
        f"reaped): {after - warmed:+.0f} MB over before"
    )
    print(
        f"left behind by closed sessions: {len(leftover_folders)} session folders, {len(leftover_files)} temporary "
        f"files, {len(leftover_children)} server child processes {leftover_children or ''}"
    )
    if failures:
        print("server log tail:\n" + log_tail)
    return 1 if failures or leftover_folders or leftover_files or leftover_children else 0


if __name__ == "__main__":
    sys.exit(main())
