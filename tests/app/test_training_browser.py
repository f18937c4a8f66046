"""The Training and Compare pages in a real browser: what AppTest cannot show (timed self-updates, downloads, two
sessions served at once)."""

from __future__ import annotations

import pytest

from facegen.train import browse, runs
from tests.app.browser import chromium_page, served_app
from tests.conftest import TINY_DCGAN_PATH
from tests.media import decoded_frames
from tests.tiny_runs import TINY_SETTINGS, train_tiny_run, wait_for

LOAD_TIMEOUT_MS = 120_000
LOADED_IMAGES = """(count) => [...document.querySelectorAll('[data-testid="stImage"] img')]
                                .filter(img => img.complete && img.naturalWidth > 0).length >= count"""


@pytest.mark.slow
def test_two_sessions_render_and_browse_at_once_and_the_timelapse_downloads(tmp_path, monkeypatch):
    runs_root = tmp_path / "runs"
    train_tiny_run(runs_root / "tiny", steps=20)
    monkeypatch.setenv("FACEGEN_RUNS", str(runs_root))
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))  # the pretrained model offers a fetch button
    with served_app(tmp_path / "streamlit.log") as base_url, chromium_page() as comparing:
        browsing = comparing.context.browser.new_page(viewport={"width": 1400, "height": 1000})
        comparing.goto(base_url)
        browsing.goto(base_url)
        # both sessions ask for their page before either is waited for, so the server runs the two side by side
        comparing.get_by_role("link", name="Compare").click()
        browsing.get_by_role("link", name="Training").click()
        browsing.get_by_role("tab", name="Samples").click(timeout=LOAD_TIMEOUT_MS)
        browsing.get_by_role("button", name="Build timelapse of 4 grids").click(timeout=LOAD_TIMEOUT_MS)
        more_models = comparing.get_by_role("textbox", name="More models")
        more_models.fill(str(TINY_DCGAN_PATH), timeout=LOAD_TIMEOUT_MS)
        more_models.press("Control+Enter")
        comparing.wait_for_function(LOADED_IMAGES, arg=2, timeout=LOAD_TIMEOUT_MS)
        with browsing.expect_download(timeout=LOAD_TIMEOUT_MS) as download_info:
            browsing.get_by_role("button", name="Download timelapse (MP4)").click(timeout=LOAD_TIMEOUT_MS)
        download = download_info.value
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        comparing.get_by_text("All 2 models get the same latents").wait_for(timeout=LOAD_TIMEOUT_MS)
        for session in (comparing, browsing):
            assert not session.locator('[data-testid="stException"]').count(), session.url
    assert download.suggested_filename == "tiny-timelapse.mp4"
    assert saved.read_bytes()[4:8] == b"ftyp"
    assert len(decoded_frames(saved)) == len(runs.list_sample_grids(runs_root / "tiny")) == 4


@pytest.mark.slow
def test_the_page_follows_a_live_run_by_itself_and_its_stop_button_ends_it(tmp_path, monkeypatch):
    runs_root = tmp_path / "runs"
    launched = browse.start_training_run(
        {**TINY_SETTINGS, "steps": 1_000_000, "checkpoint_every": 1_000_000}, "live", runs_root
    )
    monkeypatch.setenv("FACEGEN_RUNS", str(runs_root))
    try:
        wait_for(lambda: runs.read_metrics(launched.run_dir), 120, "the run's first metrics")
        with served_app(tmp_path / "streamlit.log") as base_url, chromium_page() as page:
            page.goto(base_url)
            page.get_by_role("link", name="Training").click()
            step = page.get_by_test_id("stMetricValue").nth(1)
            step.wait_for(timeout=LOAD_TIMEOUT_MS)
            first = step.inner_text()
            # no click, no reload: only the page's own timer can change the number
            page.wait_for_function(
                """(first) => document.querySelectorAll('[data-testid="stMetricValue"]')[1].innerText !== first""",
                arg=first,
                timeout=LOAD_TIMEOUT_MS,
            )
            # the page's own Stop, not the one Streamlit's header shows while a script is running
            page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop").click()
            page.get_by_test_id("stMetricValue").first.filter(has_text="stopped").wait_for(timeout=LOAD_TIMEOUT_MS)
            wait_for(lambda: launched.exited, 60, "the training process to end")
    finally:
        if not launched.exited:
            launched.process.kill()
    assert runs.read_status(launched.run_dir)["state"] == "stopped"
    assert len(runs.list_checkpoints(launched.run_dir)) == 1
