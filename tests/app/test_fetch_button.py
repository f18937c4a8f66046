"""The app's Fetch button for a catalog model that is not downloaded yet, served from loopback."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from facegen import registry
from tests.fake_host import FakeHost, use_catalog
from tests.test_registry import write_tiny_dcgan

SAMPLE_PAGE = Path(__file__).resolve().parents[2] / "pages" / "sample.py"


def test_fetch_button_downloads_the_model_and_faces_appear(tmp_path, monkeypatch):
    host = FakeHost()
    try:
        weights = tmp_path / "tiny.pt"
        sha256 = write_tiny_dcgan(weights)
        host.serve("tiny.pt", weights.read_bytes())
        use_catalog(
            tmp_path,
            monkeypatch,
            {
                "tiny-fetched": {
                    "title": "Tiny DCGAN",
                    "filename": "tiny.pt",
                    "size_bytes": weights.stat().st_size,
                    "sha256": sha256,
                    "sources": [{"kind": "url", "url": host.url("tiny.pt")}],
                }
            },
        )
        app = AppTest.from_file(str(SAMPLE_PAGE), default_timeout=120).run()
        assert app.sidebar.selectbox(key="model").value == "tiny-fetched"
        assert any("not downloaded yet" in warning.value for warning in app.warning)
        assert not app.get("image")

        app.button(key="fetch_tiny-fetched").click().run()

        assert not app.exception and not app.error
        assert registry.model_status(registry.catalog_entry("tiny-fetched")).state == "cached"
        captions = [caption for image in app.get("image") for caption in image.captions]
        assert sorted(caption for caption in captions if caption.startswith("seed ")) == sorted(
            f"seed {seed}" for seed in range(16)
        )
        assert app.sidebar.selectbox(key="model").value == "tiny-fetched", "the picker kept the model after the fetch"
    finally:
        host.close()
