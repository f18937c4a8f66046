"""The Training page under AppTest: the runs table, one run's grids, timelapse and checkpoints, and a run started,
watched and stopped from the page. Runs live in a temporary runs folder (FACEGEN_RUNS), never the checkout's."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from facegen.train import runs
from tests.tiny_runs import train_tiny_run, wait_for, write_crashed_run, write_run_with_checkpoints

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = str(REPO_ROOT / "pages" / "training.py")
STARTER = REPO_ROOT / "runs" / "starter"
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    """A runs folder holding the shipped starter run and a tiny run trained here."""
    root = tmp_path_factory.mktemp("runs")
    assert runs.is_run_dir(STARTER), f"the starter run should ship at {STARTER}"
    shutil.copytree(STARTER, root / "starter")
    train_tiny_run(root / "tiny", steps=20)
    return root


@pytest.fixture
def page(runs_root, monkeypatch) -> AppTest:
    monkeypatch.setenv("FACEGEN_RUNS", str(runs_root))
    return open_page()


def open_page() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    assert_no_exception(app)
    return app


def assert_no_exception(app: AppTest) -> None:
    assert not app.exception, [exception.value for exception in app.exception]


def runs_table(app: AppTest) -> dict[str, dict]:
    return {row["run"]: row for row in app.dataframe[0].value.to_dict("records")}


def shown_metric(app: AppTest, label: str) -> str:
    return next(metric.value for metric in app.metric if metric.label == label)


def image_captions(app: AppTest) -> list[str]:
    return [caption for image in app.get("image") for caption in image.captions]


def test_runs_table_lists_the_starter_run_and_a_run_trained_in_the_test(page):
    table = runs_table(page)
    assert set(table) == {"starter", "tiny"}
    assert table["tiny"]["model"] == "dcgan" and table["tiny"]["dataset"] == "demo:lfw"
    assert table["tiny"]["steps"] == "20 / 20" and table["tiny"]["images seen"] == 160
    assert table["tiny"]["status"] == "finished"
    starter = runs.summarize_run(STARTER)
    assert table["starter"]["steps"] == f"{starter.step:,} / {starter.total_steps:,}"
    assert table["starter"]["status"] == starter.status


def test_grid_slider_moves_through_the_runs_sample_grids(page):
    page.selectbox(key="run").set_value("tiny").run()
    slider = page.select_slider(key="grid_step")
    assert list(slider.options) == ["5", "10", "15", "20"]
    assert any(caption.startswith("step 20:") for caption in image_captions(page)), "the newest grid is shown first"
    for step in (5, 10, 15, 20):
        page.select_slider(key="grid_step").set_value(step).run()
        assert_no_exception(page)
        assert any(caption.startswith(f"step {step}:") for caption in image_captions(page))


def test_timelapse_is_built_on_demand_and_offered_for_download(page):
    page.selectbox(key="run").set_value("tiny").run()
    assert not [button for button in page.get("download_button") if button.label.startswith("Download timelapse")]
    page.button(key="build_timelapse").click().run()
    assert_no_exception(page)
    assert next(button.label for button in page.get("download_button")) == "Download timelapse (MP4)"
    name, timelapse = page.session_state["timelapse"]
    assert name == "tiny" and timelapse.steps == (5, 10, 15, 20)
    assert timelapse.path.stat().st_size > 1000
    assert timelapse.path.read_bytes()[4:8] == b"ftyp", "not an MP4 file"


def test_a_checkpoint_samples_faces_and_can_be_kept(page, runs_root):
    page.selectbox(key="run").set_value("tiny").run()
    page.button(key="sample_tiny_10").click().run()
    assert_no_exception(page)
    assert "run:tiny@10: seeds 0-7" in image_captions(page)
    page.checkbox(key="keep_tiny_10").check().run()
    assert runs.read_marked(runs_root / "tiny") == [10]
    page.checkbox(key="keep_tiny_10").uncheck().run()
    assert runs.read_marked(runs_root / "tiny") == []


def test_a_crashed_run_shows_as_crashed_not_running(tmp_path, monkeypatch):
    write_crashed_run(tmp_path / "killed")
    monkeypatch.setenv("FACEGEN_RUNS", str(tmp_path))
    app = open_page()
    assert runs_table(app)["killed"]["status"] == "crashed"
    assert shown_metric(app, "Status") == "crashed"
    assert any("crashed at step 40" in error.value for error in app.error)
    assert not [button for button in app.get("button") if button.label == "Stop"]


def start_from_page(app: AppTest, name: str) -> AppTest:
    """Fill the New run form with a tiny, endless DCGAN run and press Start."""
    app.selectbox(key="new_data_choice").set_value("demo:lfw").run()
    app.text_input(key="new_name").set_value(name)
    app.number_input(key="new_steps").set_value(1_000_000)
    app.number_input(key="new_batch").set_value(8)
    app.selectbox(key="new_resolution").set_value(32)
    app.number_input(key="new_channels").set_value(8)
    app.number_input(key="new_log_every").set_value(2)
    app.number_input(key="new_sample_every").set_value(5)
    app.number_input(key="new_checkpoint_every").set_value(1_000_000)
    return app.button(key="start_run").click().run()


def end_process(run_dir: Path) -> None:
    pid = runs.read_status(run_dir).get("pid")
    if pid and runs.effective_state(runs.read_status(run_dir)) == "running":
        os.kill(pid, 9)


@pytest.mark.slow
def test_a_run_started_from_the_page_shows_live_metrics_and_stops_with_a_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_RUNS", str(tmp_path))
    app = open_page()
    run_dir = tmp_path / "from-page"
    try:
        start_from_page(app, "from-page")
        assert_no_exception(app)
        assert not app.error, [error.value for error in app.error]
        wait_for(lambda: len(runs.read_metrics(run_dir)) >= 2, TIMEOUT_S, "the run's first metrics")
        app.run()
        assert app.selectbox(key="run").value == "from-page"
        assert shown_metric(app, "Status") == "running"
        assert any(caption.value.startswith("loss_d ") for caption in app.caption), "no live losses shown"
        first_step = int(shown_metric(app, "Step").split(" / ")[0].replace(",", ""))
        wait_for(lambda: runs.read_metrics(run_dir)[-1]["step"] > first_step, TIMEOUT_S, "more steps")
        app.run()  # what the page's live fragment does every few seconds
        assert int(shown_metric(app, "Step").split(" / ")[0].replace(",", "")) > first_step

        app.button(key="stop_run").click().run()
        assert_no_exception(app)
        wait_for(lambda: runs.read_status(run_dir).get("state") == "stopped", TIMEOUT_S, "the run to stop")
        app.run()
    finally:
        end_process(run_dir)
    assert shown_metric(app, "Status") == "stopped"
    checkpoints = runs.list_checkpoints(run_dir)
    assert len(checkpoints) == 1 and checkpoints[0].step == runs.read_status(run_dir)["step"]
    assert (checkpoints[0].path / runs.GENERATOR_FILE).stat().st_size > 0
    assert not [button for button in app.get("button") if button.label == "Stop"]


def test_bad_new_run_settings_show_an_error_and_start_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_RUNS", str(tmp_path))
    app = open_page()
    app.selectbox(key="new_data_choice").set_value("Folder, zip or hf:OWNER/NAME…").run()
    app.text_input(key="new_name").set_value("nothing")
    app.button(key="start_run").click().run()
    assert_no_exception(app)
    assert any("Missing setting 'data'" in error.value for error in app.error)
    assert list(tmp_path.iterdir()) == []


def test_a_start_with_a_missing_data_folder_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_RUNS", str(tmp_path))
    app = open_page()
    app.selectbox(key="new_data_choice").set_value("Folder, zip or hf:OWNER/NAME…").run()
    app.text_input(key="new_data_path").set_value(str(tmp_path / "no-such-folder"))
    app.text_input(key="new_name").set_value("no-data")
    app.button(key="start_run").click().run()
    assert_no_exception(app)
    assert [error.value for error in app.error] == [
        f"Dataset {tmp_path / 'no-such-folder'} does not exist. Check the path, or start with the offline demo set "
        "'demo:lfw'."
    ]
    assert not any(info.value.startswith("Starting") for info in app.info)
    assert list(tmp_path.iterdir()) == [], "no run folder, no log"


def test_the_architecture_picker_offers_each_architectures_resolutions_and_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_RUNS", str(tmp_path))
    app = open_page()
    assert app.selectbox(key="new_arch").options == ["dcgan", "wgan-gp", "progan", "cdcgan"]
    command = next(caption.value for caption in app.caption if caption.value.startswith("Runs `"))
    # the DCGAN family starts where a CPU shows faces soonest: 32 px, 32 channels
    assert app.selectbox(key="new_resolution").options == ["32", "64"] and app.selectbox(key="new_resolution").value == 32
    assert "--generator-channels 32" in command and not app.number_input(key="new_channels").disabled

    app.selectbox(key="new_arch").set_value("progan").run()
    assert_no_exception(app)
    resolution = app.selectbox(key="new_resolution")
    assert resolution.options == ["4", "8", "16", "32", "64", "128", "256"] and resolution.value == 256
    assert any(caption.value.startswith("ProGAN (Karras et al. 2018)") for caption in app.caption)
    command = next(caption.value for caption in app.caption if caption.value.startswith("Runs `"))
    assert "--arch progan" in command and "channels" not in command, "ProGAN has no such setting"
    assert app.number_input(key="new_channels").disabled


def test_a_cuda_start_on_a_cpu_machine_shows_one_message_not_the_last_starts_too(tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setenv("FACEGEN_RUNS", str(tmp_path))
    app = open_page()
    app.selectbox(key="new_data_choice").set_value("Folder, zip or hf:OWNER/NAME…").run()
    app.text_input(key="new_data_path").set_value(str(tmp_path / "no-such-folder"))
    app.button(key="start_run").click().run()
    app.selectbox(key="new_data_choice").set_value("demo:lfw").run()
    app.text_input(key="new_device").set_value("cuda")
    app.button(key="start_run").click().run()
    assert_no_exception(app)
    assert [error.value for error in app.error] == [
        "Device 'cuda' needs a CUDA GPU, and this machine has none that PyTorch can use. Choose device cpu (or auto, "
        "which takes a GPU only when there is one)."
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("action", ["archive", "delete"])
def test_a_finished_run_can_be_archived_or_deleted_after_a_confirmation(action, tmp_path, monkeypatch):
    write_run_with_checkpoints(tmp_path / "old", [10])
    write_run_with_checkpoints(tmp_path / "kept", [10])
    monkeypatch.setenv("FACEGEN_RUNS", str(tmp_path))
    app = open_page()
    app.selectbox(key="run").set_value("old").run()

    app.button(key=f"{action}_run").click().run()
    assert (tmp_path / "old").is_dir(), "nothing happens before the confirmation"
    assert any(warning.value.startswith(f"{action.capitalize()} run old?") for warning in app.warning)
    app.button(key="cancel_removal").click().run()
    assert (tmp_path / "old").is_dir() and not app.warning

    app.button(key=f"{action}_run").click().run()
    app.button(key="confirm_removal_yes").click().run()

    assert_no_exception(app)
    assert not (tmp_path / "old").exists()
    assert list(runs_table(app)) == ["kept"]
    assert (tmp_path / ".archive" / "old" / "config.json").is_file() == (action == "archive")


def test_a_running_run_offers_no_delete_and_the_library_refuses_it(tmp_path, monkeypatch):
    from facegen.errors import FacegenError
    from facegen.train import browse

    run_dir = write_crashed_run(tmp_path / "live")
    status = runs.read_status(run_dir) | {"pid": os.getpid(), "updated": time.time()}
    (run_dir / runs.STATUS_FILE).write_text(json.dumps(status))
    monkeypatch.setenv("FACEGEN_RUNS", str(tmp_path))
    app = open_page()
    assert shown_metric(app, "Status") == "running"
    assert not [button for button in app.button if button.key in ("delete_run", "archive_run")]
    with pytest.raises(FacegenError, match="Run live is still training: stop it first, then delete it."):
        browse.delete_run(run_dir)
    assert run_dir.is_dir()


def test_a_collapsed_discriminator_is_pointed_out(tmp_path, monkeypatch):
    run_dir = write_run_with_checkpoints(tmp_path / "collapsed", [300])
    records = [
        {"step": step, "images_seen": step * 64, "loss_d": 0.001, "loss_g": 9.0, "d_real": 0.999, "d_fake": 0.001}
        for step in range(10, 310, 10)
    ]
    (run_dir / runs.METRICS_FILE).write_text("".join(json.dumps(record) + "\n" for record in records))
    monkeypatch.setenv("FACEGEN_RUNS", str(tmp_path))
    app = open_page()
    assert any("The discriminator has won outright" in warning.value for warning in app.warning)
