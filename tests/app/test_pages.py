"""Every page under AppTest: standalone and through the app's navigation."""

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from facegen.images import make_grid, resize_image
from tests.app.conftest import with_tiny_model
from tests.conftest import TINY_DCGAN_PATH

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((REPO_ROOT / "pages").glob("*.py"))
TIMEOUT_S = 120


def open_sample_page() -> AppTest:
    return with_tiny_model(AppTest.from_file(str(REPO_ROOT / "pages" / "sample.py"), default_timeout=TIMEOUT_S)).run()


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_page_runs_on_its_own_without_exceptions(page):
    app = with_tiny_model(AppTest.from_file(str(page), default_timeout=TIMEOUT_S)).run()
    assert not app.exception, [exception.value for exception in app.exception]


def test_app_navigates_to_every_page():
    app = with_tiny_model(AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=TIMEOUT_S)).run()
    assert not app.exception
    for page in PAGES:
        app.switch_page(f"pages/{page.name}").run()
        assert not app.exception, (page.name, [exception.value for exception in app.exception])


def test_sample_page_shows_the_models_16_faces_for_seeds_0_to_15(tiny_model, page_pictures):
    app = open_sample_page()
    assert app.sidebar.text_input(key="seeds_text").value == "0-15"
    assert not app.error
    shown = dict(page_pictures(app))
    faces = tiny_model.sample(seeds=range(16))
    for seed, face in enumerate(faces):  # 64 px faces are shown 4x larger, enlarged with Lanczos
        expected = resize_image(face, (256, 256), "lanczos")
        assert np.array_equal(shown[f"seed {seed}"], expected), f"seed {seed} shows other pixels than the model draws"
    grid_caption = f"{TINY_DCGAN_PATH} · seeds 0-15 · psi 1.0 · 64×64 px, shown ×4 (Lanczos)"
    assert shown[grid_caption].shape == (1024, 1024, 3)
    assert np.array_equal(shown[grid_caption], resize_image(make_grid(faces, 4), (1024, 1024), "lanczos"))
    assert len({shown[f"seed {seed}"].tobytes() for seed in range(16)}) == 16


def test_sample_page_shows_small_faces_large_and_says_their_own_size(page_pictures):
    app = open_sample_page()
    grid = app.get("image")[0]
    assert grid.captions[0].endswith("64×64 px, shown ×4 (Lanczos)")
    assert app.get("download_button")[0].proto.label == "Download grid (PNG)"

    app.button(key="enlarge_3").click().run()

    assert not app.exception
    enlarged = dict(page_pictures(app))[f"{TINY_DCGAN_PATH} · seed 3 · 64×64 px, shown ×8 (Lanczos)"]
    assert enlarged.shape == (512, 512, 3)


def test_sample_page_shows_bad_seeds_as_an_error_not_a_traceback():
    app = open_sample_page()
    app.sidebar.text_input(key="seeds_text").set_value("3-x").run()
    assert not app.exception
    assert any("Malformed seed list" in error.value for error in app.error)


def test_sample_page_custom_path_that_does_not_exist_shows_error():
    app = open_sample_page()
    app.sidebar.text_input(key="model_path").set_value("/no/such/file.pkl").run()
    assert not app.exception
    assert any("does not exist" in error.value for error in app.error)


def test_sidebar_offers_this_machines_devices_and_refuses_emulated_bfloat16(monkeypatch):
    from facegen import device as devices

    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx512f"}))  # a CPU without bfloat16
    app = with_tiny_model(AppTest.from_file(str(REPO_ROOT / "pages" / "sample.py"), default_timeout=TIMEOUT_S)).run()
    assert app.sidebar.selectbox(key="device").options[-1] == "cpu (float32)"
    app.sidebar.selectbox(key="precision").set_value("bf16").run()
    assert not app.exception
    assert any("bfloat16 was requested but this CPU" in error.value for error in app.error)


def test_psi_is_labelled_for_what_it_does_on_each_kind_of_model():
    app = open_sample_page()
    slider = next(slider for slider in app.sidebar.slider if "psi" in slider.label)
    assert slider.label == "Latent scale (psi)"
    assert "no W space" in slider.help and "multiplies z" in slider.help and "typical faces" not in slider.help

    app.sidebar.text_input(key="model_path").set_value(str(REPO_ROOT / "tests/fixtures/nvidia/sg2.pkl")).run()
    assert not app.exception
    psi = next(slider for slider in app.sidebar.slider if "psi" in slider.label)
    assert psi.label == "Truncation psi" and "average face" in psi.help
