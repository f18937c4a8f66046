"""The Compare page under AppTest: an own run and a pretrained model on the same seeds, and the FID/KID table."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import TINY_DCGAN_PATH
from tests.feature_stand_in import use_stand_in_features
from tests.tiny_runs import train_tiny_run

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = str(REPO_ROOT / "pages" / "compare.py")
TIMEOUT_S = 600
TINY = str(TINY_DCGAN_PATH)


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    train_tiny_run(root / "tiny", steps=20)
    return root


@pytest.fixture
def page(runs_root, monkeypatch) -> AppTest:
    """The page comparing the tiny run with the tiny test model, which stands in for a pretrained one; FID/KID
    measured with stand-in features."""
    monkeypatch.setenv("FACEGEN_RUNS", str(runs_root))
    st.cache_resource.clear()  # the page keeps its feature extractor between runs
    use_stand_in_features(monkeypatch)
    app = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)
    app.session_state["models"] = ["run:tiny"]
    app.session_state["more_models"] = TINY
    app.run()
    assert_no_exception(app)
    return app


def assert_no_exception(app: AppTest) -> None:
    assert not app.exception, [exception.value for exception in app.exception]


def row_captions(app: AppTest) -> list[str]:
    return [caption for image in app.get("image") for caption in image.captions]


def test_the_page_starts_with_an_own_run_and_a_pretrained_model(runs_root, monkeypatch):
    monkeypatch.setenv("FACEGEN_RUNS", str(runs_root))
    app = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    assert_no_exception(app)
    assert app.sidebar.multiselect(key="models").value == ["run:tiny", "digiface-dcgan64"]


def test_own_run_and_another_model_show_faces_for_the_same_seeds(page):
    assert row_captions(page) == [
        "run:tiny@20 (z_dim 100, resized from 32px)",
        f"{TINY} (z_dim 100, resized from 64px)",
    ]
    summary = page.caption[0].value
    assert summary.startswith("Seeds, left to right: 0, 1, 2, 3, 4, 5, 6, 7 · every face shown at 256x256")
    assert "All 2 models get the same latents for each seed (z_dim 100)" in summary

    page.sidebar.text_input(key="seeds_text").set_value("42,7").run()
    page.sidebar.selectbox(key="display_size").set_value(128).run()
    assert_no_exception(page)
    assert page.caption[0].value.startswith("Seeds, left to right: 42, 7 · every face shown at 128x128")
    assert row_captions(page)[1] == f"{TINY} (z_dim 100, resized from 64px)"


def test_a_checkpoint_typed_by_hand_joins_the_comparison(page):
    page.sidebar.text_area(key="more_models").set_value(f"{TINY}\nrun:tiny@10").run()
    assert_no_exception(page)
    assert [caption.split(" ")[0] for caption in row_captions(page)] == ["run:tiny@20", TINY, "run:tiny@10"]


def test_an_nvidia_network_with_another_latent_size_is_compared_and_the_caption_says_its_latents_differ(page):
    stylegan2 = str(REPO_ROOT / "tests" / "fixtures" / "nvidia" / "sg2.pkl")
    page.sidebar.text_area(key="more_models").set_value(f"{TINY}\n{stylegan2}").run()
    assert_no_exception(page)
    assert row_captions(page)[2] == f"{stylegan2} (z_dim 96, resized from 64px)"
    summary = page.caption[0].value
    assert f"run:tiny@20, {TINY} share latents (z_dim 100)" in summary
    assert f"{stylegan2} has its own latents (z_dim 96)" in summary


def test_a_missing_reference_folder_is_an_error_message(page, tmp_path):
    page.text_input(key="reference").set_value(str(tmp_path / "no-such-folder")).run()
    page.button(key="compute_metrics").click().run()
    assert_no_exception(page)
    assert any("does not exist" in error.value for error in page.error)
    assert not page.dataframe


def test_quality_table_has_fid_and_kid_for_each_model(page, tiny_model, tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    for index, face in enumerate(tiny_model.sample(seeds=range(1000, 1012))):
        Image.fromarray(face).save(reference / f"{index:02d}.png")
    page.text_input(key="reference").set_value(str(reference))
    page.number_input(key="metrics_n").set_value(50).run()
    page.button(key="compute_metrics").click().run()
    assert_no_exception(page)
    assert not page.error, [error.value for error in page.error]
    rows = {row["model"]: row for row in page.dataframe[0].value.to_dict("records")}
    assert set(rows) == {"run:tiny@20", TINY}
    for row in rows.values():
        assert math.isfinite(row["FID"]) and row["FID"] > 0 and math.isfinite(row["KID"])
        assert row["generated"] == 50 and row["reference images"] == 12
    # the reference pictures are the tiny model's own; 20 steps of an 8-channel DCGAN make grey blobs
    assert rows[TINY]["FID"] < rows["run:tiny@20"]["FID"]
    assert [button.label for button in page.get("download_button")] == ["Download results (JSON)"]
