"""The Edit page under AppTest: sliders and style mixing change the face, the download carries the recipe, an
uploaded PNG brings the face back bit for bit, bad uploads give one clear line, and the direction workflows
(PCA, labelled, rename, export, import) end in sliders."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from facegen.editing import Face, FaceRenderer, StyleMix, load_directions, move_along, sefa_directions
from facegen.images import png_bytes
from facegen.registry import load_generator
from facegen.sampling import SampleRequest, recipe_for, render
from facegen.ui.face_editor import shown_large
from facegen.ui.widgets import CUSTOM_PATH
from tests.conftest import TINY_DCGAN_PATH

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = str(REPO_ROOT / "pages" / "edit.py")
SG2_PATH = REPO_ROOT / "tests" / "fixtures" / "nvidia" / "sg2.pkl"
TIMEOUT_S = 120
DOWNLOAD = "Download PNG"


@pytest.fixture(autouse=True)
def own_direction_cache(tmp_path, monkeypatch):
    """Directions the page saves go to a cache of this test's own."""
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def sg2():
    return load_generator(str(SG2_PATH))


def open_page(weights: Path) -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)
    app.session_state["model"] = CUSTOM_PATH
    app.session_state["model_path"] = str(weights)
    return checked(app.run())


def checked(app: AppTest) -> AppTest:
    assert not app.exception, [exception.value for exception in app.exception]
    assert not app.error, [error.value for error in app.error]
    return app


def before_and_after(pictures: list[tuple[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    before = next(picture for caption, picture in pictures if caption.startswith("Before"))
    after = next(picture for caption, picture in pictures if caption.startswith("After"))
    return before, after


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_a_direction_slider_changes_the_face_to_the_edited_recipes_pixels(tiny_model, page_pictures):
    app = open_page(TINY_DCGAN_PATH)
    before, after = before_and_after(page_pictures(app))
    assert before.shape == (256, 256, 3), "a 64 px face is shown at 256 px"
    assert np.array_equal(before, after)
    assert any("Native size 64×64, shown at 256×256" in caption.value for caption in app.caption)

    checked(app.slider(key="edit_amount_sefa-00").set_value(4.0).run())
    before_now, after_now = before_and_after(page_pictures(app))
    assert np.array_equal(before_now, before)
    assert np.abs(after_now.astype(int) - before.astype(int)).mean() > 1, "the face did not change"
    edited = Face.from_seed(tiny_model, 0).with_edits(move_along(sefa_directions(tiny_model)[0], 4.0))
    assert np.array_equal(after_now, shown_large(FaceRenderer(tiny_model).render(edited)))


def test_a_mix_preset_ticks_its_layers_and_mixes_the_face(sg2, page_pictures):
    app = open_page(SG2_PATH)
    before, _ = before_and_after(page_pictures(app))
    checked(app.button(key="edit_mix_coarse").click().run())
    assert [app.checkbox(key=f"edit_mix_layer_{layer}").value for layer in range(10)] == [True] * 4 + [False] * 6
    _, after = before_and_after(page_pictures(app))
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 1, "the face did not change"
    mixed = Face.from_seed(sg2, 0).with_edits(StyleMix((0, 1, 2, 3), seed=11))
    assert np.array_equal(after, shown_large(FaceRenderer(sg2).render(mixed)))


def edited_sg2_face_download(page_downloads) -> tuple[AppTest, bytes]:
    app = open_page(SG2_PATH)
    app.sidebar.number_input(key="edit_seed").set_value(5)
    app.sidebar.slider(key="edit_psi").set_value(0.7)
    app.sidebar.slider(key="edit_cutoff").set_value(8)
    app.slider(key="edit_amount_sefa-01").set_value(-3.0)
    app.slider(key="edit_layers_sefa-01").set_value((2, 6))
    checked(app.run())
    checked(app.button(key="edit_mix_fine").click().run())
    return app, page_downloads(app)[DOWNLOAD]


def test_the_download_carries_the_faces_recipe(sg2, page_downloads):
    _, png = edited_sg2_face_download(page_downloads)
    expected = Face.from_seed(sg2, 5, truncation_psi=0.7, truncation_cutoff=8).with_edits(
        StyleMix((8, 9), seed=11), move_along(sefa_directions(sg2)[1], -3.0, layers=range(2, 7))
    )
    assert Face.from_png(io.BytesIO(png), "download.png") == expected
    assert np.array_equal(decoded(png), FaceRenderer(sg2).render(expected))


def test_an_uploaded_png_restores_the_face_bit_for_bit(page_downloads, page_pictures):
    _, png = edited_sg2_face_download(page_downloads)
    app = open_page(SG2_PATH)
    app.sidebar.radio(key="edit_source").set_value("Uploaded PNG").run()
    checked(app.sidebar.file_uploader(key="edit_upload").upload("face.png", png, "image/png").run())
    assert app.sidebar.slider(key="edit_psi").value == 0.7
    restored = page_downloads(app)[DOWNLOAD]
    assert np.array_equal(decoded(restored), decoded(png)), "the restored face has other pixels"
    assert Face.from_png(io.BytesIO(restored), "restored") == Face.from_png(io.BytesIO(png), "uploaded")
    before, after = before_and_after(page_pictures(app))
    assert np.array_equal(before, after) and np.array_equal(after, shown_large(decoded(png)))


def test_a_single_face_png_from_the_sample_page_opens_as_that_face(tiny_model, page_pictures):
    request = SampleRequest(str(TINY_DCGAN_PATH), [5], 0.8)
    pixels = render(tiny_model, request)[0]
    app = open_page(TINY_DCGAN_PATH)
    app.sidebar.radio(key="edit_source").set_value("Uploaded PNG").run()
    png = png_bytes(pixels, recipe_for(tiny_model, request))
    checked(app.sidebar.file_uploader(key="edit_upload").upload("seed0005.png", png, "image/png").run())
    assert app.sidebar.slider(key="edit_psi").value == 0.8
    before, _ = before_and_after(page_pictures(app))
    assert np.array_equal(before, shown_large(pixels))


def plain_png() -> bytes:
    return png_bytes(np.zeros((8, 8, 3), np.uint8))


def tiny_model_face_png() -> bytes:
    tiny = load_generator(str(TINY_DCGAN_PATH))
    face = Face.from_seed(tiny, 3)
    return png_bytes(FaceRenderer(tiny).render(face), face.to_dict())


@pytest.mark.parametrize(
    ("make_upload", "message"),
    [
        (plain_png, "face.png carries no facegen recipe"),
        (tiny_model_face_png, "face.png was made with another model"),
        (lambda: b"not a picture at all", "face.png is not an image facegen can read (an unknown format)"),
    ],
    ids=["no recipe", "another model", "not an image"],
)
def test_a_bad_upload_gives_one_clear_error_and_no_face(make_upload, message, page_pictures):
    app = open_page(SG2_PATH)
    app.sidebar.radio(key="edit_source").set_value("Uploaded PNG").run()
    app.sidebar.file_uploader(key="edit_upload").upload("face.png", make_upload(), "image/png").run()
    assert not app.exception
    assert len(app.error) == 1, [error.value for error in app.error]
    assert message in app.error[0].value
    assert not page_pictures(app), "a face is shown for a bad upload"


def test_a_face_sent_from_another_page_opens_in_the_editor(sg2, page_pictures):
    sent = Face.from_seed(sg2, 9, truncation_psi=0.5).with_edits(StyleMix((0, 1), seed=4))
    app = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)
    app.session_state["model"] = CUSTOM_PATH
    app.session_state["model_path"] = str(SG2_PATH)
    app.session_state["handoff_edit"] = [sent.to_dict()]
    checked(app.run())
    assert app.sidebar.radio(key="edit_source").value == "Face sent from another page"
    before, after = before_and_after(page_pictures(app))
    assert np.array_equal(before, after) and np.array_equal(after, shown_large(FaceRenderer(sg2).render(sent)))


def test_pca_directions_are_computed_with_progress_and_become_sliders():
    app = open_page(TINY_DCGAN_PATH)
    app.select_slider(key="edit_pca_samples").set_value(1000)
    checked(app.button(key="edit_pca").click().run())
    assert any("Saved 10 PCA directions" in success.value for success in app.success)
    assert app.slider(key="edit_amount_pca-09").value == 0.0


def test_a_labelled_direction_is_fitted_saved_renamed_exported_and_imported(tiny_model, page_pictures, page_downloads):
    app = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)
    app.session_state["model"] = CUSTOM_PATH
    app.session_state["model_path"] = str(TINY_DCGAN_PATH)
    app.session_state["edit_label_seeds"] = list(range(24))  # the page draws random seeds; a test wants the same
    checked(app.run())
    checked(app.toggle(key="edit_labelling").set_value(True).run())
    shown = page_pictures(app)
    faces = {int(caption.removeprefix("seed ")): picture for caption, picture in shown if caption.startswith("seed ")}
    assert sorted(faces) == list(range(24))
    by_brightness = sorted(faces, key=lambda seed: faces[seed].mean())
    for seed in by_brightness[-10:]:
        app.checkbox(key=f"edit_has_{seed}").check()
    for seed in by_brightness[:10]:
        app.checkbox(key=f"edit_hasnt_{seed}").check()
    app.text_input(key="edit_label_name").set_value("bright")
    checked(app.button(key="edit_label_fit").click().run())
    accuracy = load_directions(tiny_model)["bright"].accuracy
    assert [success.value for success in app.success] == [
        f"Saved direction 'bright': held-out accuracy {accuracy:.0%} (10 faces with, 10 without)."
    ]
    brighter = {}
    for amount in (-10.0, 10.0):
        checked(app.slider(key="edit_amount_bright").set_value(amount).run())
        brighter[amount] = before_and_after(page_pictures(app))[1].mean()
    assert brighter[10.0] > brighter[-10.0] + 2, "the fitted direction does not brighten the face"

    app.selectbox(key="edit_manage_pick").set_value("bright")
    app.text_input(key="edit_manage_name").set_value("brightness")
    checked(app.button(key="edit_manage_rename").click().run())
    assert app.slider(key="edit_amount_brightness")
    exported = page_downloads(app)["Export directions (.safetensors)"]
    checked(app.button(key="edit_manage_delete").click().run())
    assert not [slider for slider in app.slider if slider.key == "edit_amount_brightness"]

    app.file_uploader(key="edit_manage_import").upload("mine.safetensors", exported, "application/octet-stream").run()
    checked(app.button(key="edit_manage_import_button").click().run())
    assert any("Imported 1 directions: brightness" in success.value for success in app.success)
    assert app.slider(key="edit_amount_brightness").value == 0.0
