"""The served app in a real headless Chromium: what a user sees."""

import io
import itertools
import re

import numpy as np
import pytest
from PIL import Image

from facegen.editing import Face, FaceRenderer, move_along, render_face, sefa_directions
from facegen.images import make_grid, resize_image
from facegen.ui.face_editor import shown_large
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
    expected = resize_image(make_grid(tiny_model.sample(seeds=range(16)), 4), (1024, 1024), "lanczos")
    assert np.array_equal(shown, expected), "the browser shows other pixels than seeds 0-15 of the model, 4x larger"
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
    pages = ["Home", "Sample", "Edit", "Project", "Interpolate", "Training", "Compare"]
    assert [" ".join(link.split()[-1:]) for link in links] == pages


def test_edit_page_shows_a_new_face_when_a_slider_moves(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))  # no catalog model drawn before the pick
    with served_app(tmp_path / "streamlit.log") as base_url, chromium_page() as page:
        page.goto(base_url)
        page.get_by_role("link", name="Edit").click()
        pick_weights_file(page, TINY_DCGAN_PATH, LOAD_TIMEOUT_MS)
        page.get_by_text("After: 0 edits").wait_for(timeout=LOAD_TIMEOUT_MS)
        page.wait_for_function(LOADED_IMAGES, arg=2, timeout=LOAD_TIMEOUT_MS)
        after = page.locator('[data-testid="stImage"] img').nth(1)
        unedited_source = after.get_attribute("src")
        # the top closed-form direction's amount to +10
        page.get_by_role("slider", name=re.compile(r"^sefa-00 ")).press("End")
        page.get_by_text("After: 1 edit", exact=True).wait_for(timeout=LOAD_TIMEOUT_MS)
        page.wait_for_function(
            """(old) => { const img = document.querySelectorAll('[data-testid="stImage"] img')[1];
                          return img && img.complete && img.naturalWidth > 0 && img.getAttribute('src') !== old; }""",
            arg=unedited_source,
            timeout=LOAD_TIMEOUT_MS,
        )
        page.screenshot(path=str(tmp_path / "edit-page.png"), full_page=True)
        edited_source = after.get_attribute("src")
        edited_png = page.request.get(
            edited_source if edited_source.startswith("http") else base_url + edited_source
        ).body()

    edited = Face.from_seed(tiny_model, 0).with_edits(move_along(sefa_directions(tiny_model)[0], 10.0))
    shown = np.asarray(Image.open(io.BytesIO(edited_png)).convert("RGB"))
    assert np.array_equal(shown, shown_large(FaceRenderer(tiny_model).render(edited))), "not the edited face"


KEYFRAME_CONTROLS = ("◀", "▶", "✕")
# each control's box, and the part of its symbol left visible by every element that clips it: a symbol clipped
# away (Streamlit's label container shrinks to nothing in a narrow column) leaves a blank button
CONTROL_BOXES = """(names) => [...document.querySelectorAll('[data-testid="stMain"] button')]
    .filter(button => names.includes(button.innerText.trim()) && button.getClientRects().length > 0)
    .map(button => {
        const text = document.createTreeWalker(button, NodeFilter.SHOW_TEXT).nextNode();
        const range = document.createRange();
        range.selectNodeContents(text);
        const glyph = range.getBoundingClientRect();
        let [left, top, right, bottom] = [glyph.left, glyph.top, glyph.right, glyph.bottom];
        for (let element = text.parentElement; element && element !== button.parentElement; element = element.parentElement) {
            if (getComputedStyle(element).overflowX === 'visible') continue;
            const clip = element.getBoundingClientRect();
            [left, top] = [Math.max(left, clip.left), Math.max(top, clip.top)];
            [right, bottom] = [Math.min(right, clip.right), Math.min(bottom, clip.bottom)];
        }
        const box = button.getBoundingClientRect();
        return {name: button.innerText.trim(), box: [box.left, box.top, box.right, box.bottom],
                glyph_width: glyph.width, visible_glyph_width: Math.max(0, right - left)};
    })"""


@pytest.mark.parametrize("width", [1024, 1280])
def test_every_keyframe_control_is_visible_and_clickable_on_a_laptop_screen(tmp_path, monkeypatch, width):
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))  # no catalog model drawn before the pick
    with served_app(tmp_path / "streamlit.log") as base_url, chromium_page() as page:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{base_url}/interpolate")
        pick_weights_file(page, TINY_DCGAN_PATH, LOAD_TIMEOUT_MS)
        page.wait_for_function(LOADED_IMAGES, arg=3, timeout=LOAD_TIMEOUT_MS)
        for count in (4, 5, 6, 7):  # more than one row of keyframes
            page.get_by_role("button", name="Add random").click()
            page.wait_for_function(LOADED_IMAGES, arg=count, timeout=LOAD_TIMEOUT_MS)
        page.wait_for_function(f"() => ({CONTROL_BOXES})(['✕']).length === 7", timeout=LOAD_TIMEOUT_MS)
        controls = page.evaluate(CONTROL_BOXES, list(KEYFRAME_CONTROLS))
        page.screenshot(path=str(tmp_path / f"keyframes-{width}.png"), full_page=True)
        sidebar = page.locator('[data-testid="stSidebar"]').bounding_box()
        assert sidebar and sidebar["width"] > 200, "the sidebar is open, as the user had it"

        assert sorted(control["name"] for control in controls) == sorted(KEYFRAME_CONTROLS * 7)
        for control in controls:
            left, top, right, bottom = control["box"]
            assert right - left >= 24 and bottom - top >= 24, f"{control} is too small to click"
            assert left >= sidebar["x"] + sidebar["width"] and right <= width, f"{control} is outside the page"
            assert control["glyph_width"] > 0 and control["visible_glyph_width"] >= control["glyph_width"] - 0.5, (
                f"{control}'s symbol is clipped"
            )
        for first, second in itertools.combinations(controls, 2):
            a, b = first["box"], second["box"]
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], f"{first} overlaps {second}"

        page.get_by_role("button", name="✕").last.click()  # the last keyframe goes
        page.wait_for_function(f"() => ({CONTROL_BOXES})(['✕']).length === 6", timeout=LOAD_TIMEOUT_MS)


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
