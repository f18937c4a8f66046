"""Public mode (FACEGEN_PUBLIC=1) under AppTest: no input can name a path on the server, training from the browser
is off, errors show no traceback, and a page rerun makes no new temporary folder."""

import tempfile
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from facegen import registry
from facegen.ui.widgets import CUSTOM_PATH, UPLOAD
from tests.test_registry import write_tiny_catalog

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120
# the only text boxes public pages keep: seeds are numbers, never paths
ALLOWED_TEXT_INPUTS = {"seeds_text"}


@pytest.fixture
def public(monkeypatch):
    monkeypatch.setenv("FACEGEN_PUBLIC", "1")
    yield
    config.set_option("client.showErrorDetails", "full")


@pytest.fixture
def cached_catalog(tmp_path, monkeypatch):
    """A catalog of one tiny DCGAN, already in a private cache: what a public server offers, without a download."""
    weights = tmp_path / "tiny.pt"
    catalog = write_tiny_catalog(tmp_path / "catalog.toml", weights)
    monkeypatch.setattr(registry, "CATALOG_PATH", catalog)
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))
    registry.install_from_file("tiny-dcgan", weights)


def text_boxes(app: AppTest) -> set[str]:
    return {box.key for box in [*app.text_input, *app.text_area]} | {
        box.key for box in [*app.sidebar.text_input, *app.sidebar.text_area]
    }


@pytest.mark.parametrize("page", ["sample", "interpolate", "compare"])
def test_public_pages_offer_no_text_box_for_a_server_path(page, public, cached_catalog):
    app = AppTest.from_file(str(REPO_ROOT / "pages" / f"{page}.py"), default_timeout=TIMEOUT_S).run()
    assert not app.exception, [exception.value for exception in app.exception]
    assert text_boxes(app) <= ALLOWED_TEXT_INPUTS
    if page != "compare":
        options = app.sidebar.selectbox(key="model").options
        assert CUSTOM_PATH not in options and UPLOAD in options
        assert not any(option.startswith("run:") for option in options)
    else:
        assert app.selectbox(key="reference").options == ["demo:lfw", "demo:digiface?n=1000", "Upload a .zip of faces…"]


def test_a_server_path_given_as_a_model_is_refused_in_public_mode(public, cached_catalog):
    script = """
from facegen.ui.widgets import ready_generator
ready_generator("/etc/shadow")
ready_generator("run:starter")
"""
    app = AppTest.from_string(script, default_timeout=TIMEOUT_S).run()
    assert not app.exception
    assert [error.value.split(",")[0] for error in app.error] == [
        "This server offers its catalog models and uploaded files only"
    ] * 2
    assert "does not exist" not in " ".join(error.value for error in app.error)


def test_training_from_the_browser_is_off_and_errors_show_no_traceback(public, cached_catalog):
    AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=TIMEOUT_S).run()
    assert config.get_option("client.showErrorDetails") == "none"
    training = AppTest.from_file(str(REPO_ROOT / "pages" / "training.py"), default_timeout=TIMEOUT_S).run()
    assert not training.exception and not training.button
    assert "off on this server" in training.info[0].value
    failing = AppTest.from_string("raise RuntimeError('/srv/secret/path')", default_timeout=TIMEOUT_S)
    failing.run()
    shown = " ".join(f"{exception.message} {' '.join(exception.stack_trace)}" for exception in failing.exception)
    assert "/srv/secret/path" not in shown and "Traceback" not in shown


def test_page_reruns_make_no_new_temporary_folders(cached_catalog, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # a private temporary folder: other processes use /tmp

    def temporaries() -> set[Path]:
        return set(tmp_path.rglob("*"))

    app = AppTest.from_file(str(REPO_ROOT / "pages" / "interpolate.py"), default_timeout=TIMEOUT_S).run()
    before = temporaries()
    for _ in range(3):
        app.run()
    assert temporaries() == before
