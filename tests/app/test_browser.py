"""The served app in a real headless Chromium: what a user sees."""

import io

import numpy as np
from PIL import Image

from facegen.editing import Face, render_face
from facegen.images import make_grid
from tests.app.browser import chromium_page, pick_weights_file, served_app
from tests.conftest import TINY_DCGAN_PATH
from tests.perceptual_stand_in import save_scripted, tiny_stand_in

LOAD_TIMEOUT_MS = 90_000
LOADED_IMAGES = """(count) => [...document.querySelectorAll('[data-testid="stImage"] img')]
                                .filter(img => img.complete && img.naturalWidth > 0).length >= count"""


def test_sample_page_shows_the_face_grid_in_a_browser(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))  # no catalog model drawn before the pick
    with served_app(tmp_path / "streamlit.log") as base_url, chromium_page() as page:
        page.goto(base_url)
        page.get_by_role("link", name="Sample").click()
        pick_weights_file(page, TINY_DCGAN_PATH, LOAD_TIMEOUT_MS)
        page.get_by_text(f"{TINY_DCGAN_PATH} · seeds 0-15").wait_for(timeout=LOAD_TIMEOUT_MS)
        page.wait_for_function(LOADED_IMAGES, arg=17, timeout=LOAD_TIMEOUT_MS)
        page.screenshot(path=str(tmp_path / "sample-page.png"), full_page=True)
        grid_source = page.locator('[data-testid="stImage"] img').first.get_attribute("src")
        grid_png = page.request.get(grid_source if grid_source.startswith("http") else base_url + grid_source).body()

    shown = np.asarray(Image.open(io.BytesIO(grid_png)).convert("RGB"))
    expected = make_grid(tiny_model.sample(seeds=range(16)), 4)
    assert np.array_equal(shown, expected), "the browser shows other pixels than seeds 0-15 of the model"
    screenshot = np.asarray(Image.open(tmp_path / "sample-page.png").convert("RGB"))
    assert screenshot.std() > 20, "the screenshot is blank"


def test_interpolate_page_renders_a_clip_that_plays_in_the_browser(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))  # no catalog model drawn before the pick
    with served_app(tmp_path / "streamlit.log") as base_url, chromium_page() as page:
        page.goto(base_url)
        page.get_by_role("link", name="Interpolate").click()
        pick_weights_file(page, TINY_DCGAN_PATH, LOAD_TIMEOUT_MS)
        # the three keyframe thumbnails mean the page has finished its first run; a click before that can be lost
        page.wait_for_function(LOADED_IMAGES, arg=3, timeout=LOAD_TIMEOUT_MS)
        page.get_by_role("button", name="Render clip").click()
        try:
            page.wait_for_function(
                "() => { const v = document.querySelector('video'); return v && v.readyState >= 2 && v.currentTime > 0.5; }",
                timeout=LOAD_TIMEOUT_MS,
            )
        finally:
            page.screenshot(path=str(tmp_path / "interpolate-page.png"), full_page=True)
        video = page.evaluate(
            "() => { const v = document.querySelector('video');"
            " return {width: v.videoWidth, height: v.videoHeight, duration: v.duration, paused: v.paused}; }"
        )
    assert video["width"] >= 64 and video["height"] >= 64
    assert abs(video["duration"] - 6.0) < 0.2, "the default clip is 6 seconds"
    assert not video["paused"]


def test_a_bookmarked_page_on_a_fresh_server_opens_inside_the_apps_navigation(tmp_path):
    with served_app(tmp_path / "streamlit.log") as base_url, chromium_page() as page:
        page.goto(f"{base_url}/training")  # the first request this server sees
        page.get_by_role("heading", name="Training").wait_for(timeout=LOAD_TIMEOUT_MS)
        navigation = page.locator('[data-testid="stSidebarNav"]')
        navigation.get_by_role("link", name="Interpolate", exact=True).wait_for(timeout=LOAD_TIMEOUT_MS)
        links = navigation.get_by_role("link").all_inner_texts()
        assert page.title() == "facegen"
    assert [" ".join(link.split()[-1:]) for link in links] == [
        "Home", "Sample", "Project", "Interpolate", "Training", "Compare",
    ]  # fmt: skip


def test_project_page_projects_an_uploaded_photo_in_the_browser(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))  # no catalog model drawn before the pick
    monkeypatch.setenv("FACEGEN_PERCEPTUAL", str(save_scripted(tiny_stand_in(), tmp_path / "perceptual.pt")))
    photo = tmp_path / "own-face.png"
    Image.fromarray(tiny_model.sample(seeds=[3])[0]).save(photo)  # the tiny model draws no detectable face
    with served_app(tmp_path / "streamlit.log") as base_url, chromium_page() as page:
        page.goto(base_url)
        page.get_by_role("link", name="Project").click()
        pick_weights_file(page, TINY_DCGAN_PATH, LOAD_TIMEOUT_MS)
        page.get_by_text("The photo is an aligned face already").click(timeout=LOAD_TIMEOUT_MS)
        page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(photo), timeout=LOAD_TIMEOUT_MS)
        page.get_by_text("Aligned, 64 px").wait_for(timeout=LOAD_TIMEOUT_MS)
        steps = page.get_by_label("Steps", exact=True).first
        steps.fill("20")
        steps.press("Enter")
        page.get_by_role("button", name="Project", exact=True).click(timeout=LOAD_TIMEOUT_MS)
        try:
            page.get_by_role("heading", name="Your face in the model").wait_for(timeout=LOAD_TIMEOUT_MS)
            page.get_by_text("Projected in z: 20 steps").wait_for(timeout=LOAD_TIMEOUT_MS)
        finally:
            page.screenshot(path=str(tmp_path / "project-page.png"), full_page=True)
        download = page.get_by_role("button", name="Download PNG")
        with page.expect_download(timeout=LOAD_TIMEOUT_MS) as downloading:
            download.click()
        downloading.value.save_as(tmp_path / "projected.png")

    face = Face.from_png(tmp_path / "projected.png")
    assert face.latent.space == "z"
    assert np.array_equal(render_face(tiny_model, face), np.asarray(Image.open(tmp_path / "projected.png")))
