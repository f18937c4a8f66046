"""Every page under AppTest: standalone and through the app's navigation."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((REPO_ROOT / "pages").glob("*.py"))
TIMEOUT_S = 120


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_page_runs_on_its_own_without_exceptions(page, dcgan):
    app = AppTest.from_file(str(page), default_timeout=TIMEOUT_S).run()
    assert not app.exception, [exception.value for exception in app.exception]


def test_app_navigates_to_every_page(dcgan):
    app = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=TIMEOUT_S).run()
    assert not app.exception
    for page in PAGES:
        app.switch_page(f"pages/{page.name}").run()
        assert not app.exception, (page.name, [exception.value for exception in app.exception])


def shown_images(app: AppTest) -> list:
    return list(app.get("image"))


def test_sample_page_shows_16_distinct_faces_for_seeds_0_to_15(dcgan):
    app = AppTest.from_file(str(REPO_ROOT / "pages" / "sample.py"), default_timeout=TIMEOUT_S).run()
    assert app.sidebar.text_input(key="seeds_text").value == "0-15"
    captions = [caption for element in shown_images(app) for caption in element.captions]
    seed_captions = sorted(caption for caption in captions if caption.startswith("seed "))
    assert seed_captions == sorted(f"seed {seed}" for seed in range(16))
    faces = dcgan.sample(seeds=range(16))
    assert all(face.std() > 10 for face in faces)
    assert len({face.tobytes() for face in faces}) == 16
    assert not app.error


def test_sample_page_shows_small_faces_large_and_says_their_own_size(dcgan):
    app = AppTest.from_file(str(REPO_ROOT / "pages" / "sample.py"), default_timeout=TIMEOUT_S).run()
    grid = shown_images(app)[0]
    assert grid.captions[0].endswith("64×64 px, shown ×4 (Lanczos)")
    assert app.get("download_button")[0].proto.label == "Download grid (PNG)"

    app.button(key="enlarge_3").click().run()

    assert not app.exception
    captions = [caption for element in shown_images(app) for caption in element.captions]
    assert "digiface-dcgan64 · seed 3 · 64×64 px, shown ×8 (Lanczos)" in captions


def test_sample_page_shows_bad_seeds_as_an_error_not_a_traceback(dcgan):
    app = AppTest.from_file(str(REPO_ROOT / "pages" / "sample.py"), default_timeout=TIMEOUT_S).run()
    app.sidebar.text_input(key="seeds_text").set_value("3-x").run()
    assert not app.exception
    assert any("Malformed seed list" in error.value for error in app.error)


def test_sample_page_custom_path_that_does_not_exist_shows_error(dcgan):
    app = AppTest.from_file(str(REPO_ROOT / "pages" / "sample.py"), default_timeout=TIMEOUT_S).run()
    picker = app.sidebar.selectbox(key="model")
    picker.set_value(picker.options[-1]).run()
    app.sidebar.text_input(key="model_path").set_value("/no/such/file.pkl").run()
    assert not app.exception
    assert any("does not exist" in error.value for error in app.error)


def test_psi_is_labelled_for_what_it_does_on_each_kind_of_model(dcgan):
    app = AppTest.from_file(str(REPO_ROOT / "pages" / "sample.py"), default_timeout=TIMEOUT_S).run()
    slider = next(slider for slider in app.sidebar.slider if "psi" in slider.label)
    assert slider.label == "Latent scale (psi)"
    assert "no W space" in slider.help and "multiplies z" in slider.help and "typical faces" not in slider.help

    picker = app.sidebar.selectbox(key="model")
    picker.set_value(picker.options[-1]).run()
    app.sidebar.text_input(key="model_path").set_value(str(REPO_ROOT / "tests/fixtures/nvidia/sg2.pkl")).run()
    assert not app.exception
    psi = next(slider for slider in app.sidebar.slider if "psi" in slider.label)
    assert psi.label == "Truncation psi" and "average face" in psi.help
