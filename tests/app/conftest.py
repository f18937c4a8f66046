"""AppTest helpers: pages opened with the tiny test model picked, and the pictures a page sends to the browser."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from facegen.ui.widgets import CUSTOM_PATH
from tests.conftest import TINY_DCGAN_PATH

PagePictures = Callable[[AppTest], list[tuple[str, np.ndarray]]]
PageDownloads = Callable[[AppTest], dict[str, bytes]]


def with_tiny_model(app: AppTest) -> AppTest:
    """Pick the tiny test model in the sidebar's model picker, as a user picks a weights file by path."""
    app.session_state["model"] = CUSTOM_PATH
    app.session_state["model_path"] = str(TINY_DCGAN_PATH)
    return app


@pytest.fixture
def served_files(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """URL -> bytes of every file (image, download) a page hands to Streamlit to serve."""
    served: dict[str, bytes] = {}
    store = MemoryMediaFileStorage.load_and_get_id

    def recording_store(self, path_or_data, mimetype, kind, filename=None):
        file_id = store(self, path_or_data, mimetype, kind, filename)
        served[self.get_url(file_id)] = self.get_file(file_id).content
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording_store)
    return served


@pytest.fixture
def page_downloads(served_files: dict[str, bytes]) -> PageDownloads:
    """app -> {label: bytes} for every download button on the page: the file a click would save."""
    return lambda app: {button.label: served_files[button.proto.url] for button in app.get("download_button")}


@pytest.fixture
def page_pictures(served_files: dict[str, bytes]) -> PagePictures:
    """app -> [(caption, picture)] for every image the page shows, decoded from the file Streamlit would serve."""

    def pictures(app: AppTest) -> list[tuple[str, np.ndarray]]:
        return [
            (caption, np.asarray(Image.open(io.BytesIO(served_files[url])).convert("RGB")))
            for element in app.get("image")
            for url, caption in zip(element.value, element.captions)
        ]

    return pictures
