"""The app's Fetch button for a catalog model that is not downloaded yet, served from loopback."""

import socket
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from facegen import registry
from tests.fake_host import FakeHost, use_catalog
from tests.test_registry import write_tiny_dcgan

PAGES = Path(__file__).resolve().parents[2] / "pages"


@pytest.fixture
def tiny_catalog(tmp_path, monkeypatch):
    """A catalog of one tiny DCGAN served by a loopback host; yields the host (serving nothing until told to)."""
    host = FakeHost()
    weights = tmp_path / "tiny.pt"
    sha256 = write_tiny_dcgan(weights)
    host.weights = weights.read_bytes()
    use_catalog(
        tmp_path,
        monkeypatch,
        {
            "tiny-fetched": {
                "title": "Tiny DCGAN",
                "filename": "tiny.pt",
                "size_bytes": len(host.weights),
                "sha256": sha256,
                "sources": [{"kind": "url", "url": host.url("tiny.pt")}],
            }
        },
    )
    yield host
    host.close()


def shown_text(app: AppTest) -> str:
    return " ".join(element.value for kind in ("warning", "error", "markdown") for element in app.get(kind))


def fetch_buttons(app: AppTest) -> list[str]:
    return [button.key for button in app.button if button.key and button.key.startswith("fetch_")]


def test_fetch_button_downloads_the_model_and_faces_appear(tiny_catalog):
    tiny_catalog.serve("tiny.pt", tiny_catalog.weights)
    app = AppTest.from_file(str(PAGES / "sample.py"), default_timeout=120).run()
    assert app.sidebar.selectbox(key="model").value == "tiny-fetched"
    assert any("not downloaded yet" in warning.value for warning in app.warning)
    assert not app.get("image")

    app.button(key="fetch_tiny-fetched").click().run()

    assert not app.exception and not app.error
    assert registry.model_status(registry.catalog_entry("tiny-fetched")).state == "cached"
    assert "not downloaded" not in shown_text(app), "the notice went with the fetch, not at the next click"
    assert fetch_buttons(app) == [] and not app.get("progress")
    captions = [caption for image in app.get("image") for caption in image.captions]
    assert sorted(caption for caption in captions if caption.startswith("seed ")) == sorted(
        f"seed {seed}" for seed in range(16)
    )
    assert app.sidebar.selectbox(key="model").value == "tiny-fetched", "the picker kept the model after the fetch"


def test_a_failed_fetch_says_why_and_leaves_no_progress_bar(tiny_catalog):
    app = AppTest.from_file(str(PAGES / "sample.py"), default_timeout=120).run()  # the host has no tiny.pt: 404

    app.button(key="fetch_tiny-fetched").click().run()

    assert not app.exception
    assert "404 (not found)" in app.error[0].value
    assert not app.get("progress"), "no empty Fetching… bar stays behind"
    assert fetch_buttons(app) == ["fetch_tiny-fetched"], "the button stays, to try again"


def test_offline_the_error_says_so_in_plain_words(tiny_catalog, monkeypatch):
    def no_name_server(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_name_server)
    app = AppTest.from_file(str(PAGES / "sample.py"), default_timeout=120).run()

    app.button(key="fetch_tiny-fetched").click().run()

    message = app.error[0].value
    assert "this machine is offline" in message
    assert "HTTPConnectionPool" not in message and "NameResolutionError" not in message and "host may" not in message
    assert registry.model_status(registry.catalog_entry("tiny-fetched")).state == "downloadable", (
        "being offline is not recorded as the host's failure"
    )


def test_home_lists_every_model_with_a_fetch_button_that_goes_once_fetched(tiny_catalog):
    tiny_catalog.serve("tiny.pt", tiny_catalog.weights)
    app = AppTest.from_file(str(PAGES / "home.py"), default_timeout=120).run()
    assert "**Tiny DCGAN** · `tiny-fetched` · not downloaded" in shown_text(app)
    assert fetch_buttons(app) == ["fetch_tiny-fetched"]

    app.button(key="fetch_tiny-fetched").click().run()

    assert not app.exception and not app.error
    assert "**Tiny DCGAN** · `tiny-fetched` · ready" in shown_text(app)
    assert fetch_buttons(app) == [] and not app.get("progress")
