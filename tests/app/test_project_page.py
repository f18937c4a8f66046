"""The Project page under AppTest: a photo in, a projected face out, with progress, stop, hand-off and downloads.

The model is the tiny test DCGAN; its own image serves as the photo, marked as already aligned (its random weights
draw no face a detector would find). The perceptual network is the small TorchScript stand-in of the projection
tests, given to the page through FACEGEN_PERCEPTUAL as a user without NVIDIA's file would.
"""

import io
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from facegen.editing import render_face
from facegen.ui import handoff
from tests.app.conftest import with_tiny_model
from tests.media import psnr
from tests.perceptual_stand_in import save_scripted, tiny_stand_in
from tests.test_faces import decompression_bomb_png

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120


@pytest.fixture(autouse=True)
def stand_in_perceptual_network(tmp_path_factory, monkeypatch):
    path = tmp_path_factory.getbasetemp() / "perceptual-stand-in.pt"
    if not path.exists():
        save_scripted(tiny_stand_in(), path)
    monkeypatch.setenv("FACEGEN_PERCEPTUAL", str(path))


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def open_page() -> AppTest:
    app = with_tiny_model(AppTest.from_file(str(REPO_ROOT / "pages" / "project.py"), default_timeout=TIMEOUT_S)).run()
    assert not app.exception, [exception.value for exception in app.exception]
    return app


@pytest.fixture
def page_moves(monkeypatch) -> list[tuple[str, object]]:
    """What the page's buttons hand on: ("send", page, face) for each face sent, ("switch", path) for each switch."""
    moves = []
    send = handoff.send_face
    monkeypatch.setattr(handoff, "send_face", lambda page, face: (moves.append(("send", page, face)), send(page, face)))
    monkeypatch.setattr(st, "switch_page", lambda page: moves.append(("switch", page)))
    return moves


def upload(app: AppTest, name: str, content: bytes, aligned: bool = False) -> AppTest:
    app.checkbox(key="photo_is_aligned").set_value(aligned)
    app.file_uploader(key="photo_upload").set_value((name, content, "image/png")).run()
    assert not app.exception, [exception.value for exception in app.exception]
    return app


def run_until(app: AppTest, condition, timeout_s: float = TIMEOUT_S) -> AppTest:
    """Rerun the page, as its polling fragment does in a browser, until `condition(app)` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition(app):
        assert not app.exception, [exception.value for exception in app.exception]
        assert not app.error, [error.value for error in app.error]
        assert time.monotonic() < deadline, "the projection did not finish in time"
        time.sleep(0.2)
        app.run()
    return app


def project(app: AppTest, steps: int) -> AppTest:
    app.number_input(key="projection_steps").set_value(steps)
    app.button(key="start_projection").click().run()
    return app


def finished(app: AppTest) -> bool:
    return any(header.value == "Your face in the model" for header in app.subheader)


def test_the_models_own_image_projects_to_a_face_that_renders_as_shown(tiny_model, page_pictures):
    target = tiny_model.sample(seeds=[3])[0]
    app = upload(open_page(), "own.png", png(target), aligned=True)
    shown = dict(page_pictures(app))
    assert np.array_equal(shown["Aligned, 64 px"], target)
    run_until(project(app, 40), finished)
    outputs = app.session_state["projection_job"].outputs
    assert outputs.result.steps_done == 40 and outputs.result.space == "z"
    projected = np.asarray(Image.open(outputs.projected))
    shown = dict(page_pictures(app))
    assert np.array_equal(shown["Projected in z: 40 steps, distance " + f"{outputs.result.distance:.4f}"], projected)
    assert np.array_equal(render_face(tiny_model, outputs.result.face), projected)
    labels = [button.label for button in app.get("download_button")]
    assert labels == ["Download PNG", "Download progress clip"]  # a DCGAN has no W, so no projected_w.npz


@pytest.mark.needs_package_index
def test_the_shipped_dcgans_own_face_projects_on_the_page(shipped_dcgan, page_pictures):
    target = shipped_dcgan.sample(seeds=[7])[0]
    app = AppTest.from_file(str(REPO_ROOT / "pages" / "project.py"), default_timeout=TIMEOUT_S)
    app.session_state["model"] = "digiface-dcgan64"
    app = upload(app.run(), "digiface.png", png(target), aligned=True)
    run_until(project(app, 150), finished)
    projected = np.asarray(Image.open(app.session_state["projection_job"].outputs.projected))
    assert psnr(projected, target) >= 30


@pytest.mark.parametrize(
    ("button", "page", "path"),
    [
        ("send_to_interpolate", handoff.INTERPOLATE, "pages/interpolate.py"),
        ("open_in_edit", handoff.EDIT, "pages/edit.py"),
    ],
)
def test_the_result_goes_on_to_interpolate_or_edit(button, page, path, tiny_model, page_moves):
    app = upload(open_page(), "own.png", png(tiny_model.sample(seeds=[5])[0]), aligned=True)
    run_until(project(app, 5), finished)
    face = app.session_state["projection_job"].outputs.result.face
    app.button(key=button).click().run()
    assert not app.exception, [exception.value for exception in app.exception]
    assert page_moves == [("send", page, face), ("switch", path)]


def test_a_long_projection_shows_progress_and_stops_with_the_face_reached(tiny_model):
    app = upload(open_page(), "own.png", png(tiny_model.sample(seeds=[1])[0]), aligned=True)
    project(app, 100_000)
    job = app.session_state["projection_job"]
    run_until(app, lambda page: job.preview is not None and page.get("progress"))
    assert "Projecting: step" in app.get("progress")[0].proto.text
    app.button(key="stop_projection").click().run()
    run_until(app, finished)
    assert 0 < job.outputs.result.steps_done < 100_000
    assert any("of 100,000 steps" in caption for image in app.get("image") for caption in image.captions)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.png", b"not a picture at all", "is not an image facegen can read"),
        ("coffee.png", png(skimage.data.coffee()), "No face found in coffee.png"),
        ("bomb.png", decompression_bomb_png(30_000, 30_000), "too large to decode safely"),
    ],
    ids=["not-an-image", "no-face", "decompression-bomb"],
)
def test_bad_photos_give_one_error_line_and_no_projection(name, content, message):
    app = upload(open_page(), name, content)
    assert len(app.error) == 1 and message in app.error[0].value
    assert "\n" not in app.error[0].value.strip()
    assert "projection_job" not in app.session_state


def test_a_photo_shows_its_faces_and_the_aligned_crop(page_pictures):
    app = upload(open_page(), "astronaut.png", png(skimage.data.astronaut()))
    assert not app.error
    shown = dict(page_pictures(app))
    assert shown["Aligned, 64 px"].shape == (64, 64, 3)
    marked = shown["astronaut.png: 1 face found (green: the one projected)"]
    assert marked.shape == (512, 512, 3) and not np.array_equal(marked, skimage.data.astronaut())
