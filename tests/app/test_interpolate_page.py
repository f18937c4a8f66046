"""The Interpolate page under AppTest: keyframe editing, a preview, a full render to a playable MP4 and downloads."""

import itertools
import shutil
import time
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from facegen.editing import Face, FaceRenderer, move_along, sefa_directions
from facegen.ui.handoff import INTERPOLATE
from facegen.video import read_clip_recipe
from tests.app.conftest import with_tiny_model
from tests.media import decoded_frames, psnr
from tests.tiny_runs import add_checkpoint, write_run_with_checkpoints

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = str(REPO_ROOT / "pages" / "interpolate.py")
TIMEOUT_S = 120


def open_page() -> AppTest:
    app = with_tiny_model(AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)).run()
    assert not app.exception, [exception.value for exception in app.exception]
    return app


def keyframe_captions(app: AppTest) -> list[str]:
    return [caption for image in app.get("image") for caption in image.captions if ": seed " in caption]


def keyframe_thumbnails(app: AppTest) -> list[str]:
    """The keyframe cards' images, by media URL: AppTest names each image file after a hash of its bytes."""
    return [image.proto.imgs[0].url for image in app.get("image") if ": seed " in image.captions[0]]


def run_until(app: AppTest, condition, timeout_s: float = TIMEOUT_S) -> AppTest:
    """Rerun the page, as its polling fragment does in a browser, until `condition(app)` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition(app):
        assert not app.exception, [exception.value for exception in app.exception]
        assert time.monotonic() < deadline, "the render did not finish in time"
        time.sleep(0.3)
        app.run()
    return app


def short_clip(app: AppTest, seconds: int = 1, fps: int = 10) -> AppTest:
    app.sidebar.slider(key="seconds").set_value(seconds)
    app.sidebar.select_slider(key="fps").set_value(fps)
    return app.run()


def test_keyframes_show_thumbnails_and_can_be_added_reordered_and_removed():
    app = open_page()
    assert keyframe_captions(app) == ["1: seed 1", "2: seed 7", "3: seed 42"]
    app.number_input(key="new_seed").set_value(99).run()
    app.button(key="add_seed").click().run()
    assert keyframe_captions(app)[-1] == "4: seed 99"
    app.button(key="earlier_3").click().run()
    assert keyframe_captions(app) == ["1: seed 1", "2: seed 7", "3: seed 99", "4: seed 42"]
    app.button(key="remove_0").click().run()
    assert keyframe_captions(app) == ["1: seed 7", "2: seed 99", "3: seed 42"]


def test_a_negative_seed_is_refused_in_plain_words_and_adds_nothing():
    app = open_page()
    app.number_input(key="new_seed").set_value(-5).run()
    assert [error.value for error in app.error] == [
        "Seed -5 cannot be added: seeds are whole numbers from 0 to 4,294,967,295."
    ]
    assert app.button(key="add_seed").disabled
    assert keyframe_captions(app) == ["1: seed 1", "2: seed 7", "3: seed 42"]


def test_removing_keyframes_below_two_says_what_to_do_in_the_apps_words():
    app = open_page()
    app.button(key="remove_2").click().run()
    app.button(key="remove_1").click().run()
    message = app.error[0].value
    assert message.startswith("A clip needs at least 2 keyframes; got 1 seed(s). Add seeds, or random ones ('Add random'")
    assert "--seeds" not in message


def test_thumbnails_follow_the_selected_runs_newest_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_RUNS", str(tmp_path))
    run_dir = write_run_with_checkpoints(tmp_path / "tiny", [10])
    app = open_page()
    app.sidebar.selectbox(key="model").set_value("run:tiny").run()
    assert not app.exception and keyframe_captions(app) == ["1: seed 1", "2: seed 7", "3: seed 42"]
    at_step_10 = keyframe_thumbnails(app)
    assert len(set(at_step_10)) == 3

    add_checkpoint(run_dir, 20)
    app.run()
    at_step_20 = keyframe_thumbnails(app)
    assert len(at_step_20) == 3 and not set(at_step_20) & set(at_step_10), "thumbnails of the old checkpoint"

    shutil.rmtree(run_dir / "checkpoints" / "step-00000020")
    app.run()
    assert keyframe_thumbnails(app) == at_step_10


def test_one_keyframe_is_an_error_message_not_a_traceback():
    app = open_page()
    app.button(key="remove_0").click().run()
    app.button(key="remove_0").click().run()
    assert not app.exception
    assert any("at least 2 keyframes" in error.value for error in app.error)


def test_render_finishes_with_a_video_and_downloads(tiny_model):
    app = short_clip(open_page())
    app.button(key="render").click().run()
    run_until(app, lambda page: page.get("video"))
    video = app.get("video")[0].proto
    assert video.url.endswith(".mp4") and video.loop and video.autoplay and video.muted
    downloads = {button.label: button for button in app.get("download_button")}
    assert set(downloads) == {"Download MP4", "Download GIF", "Download recipe"}
    downloads["Download MP4"].click().run()
    assert not app.exception and not app.error

    job = app.session_state["render_job"]
    mp4 = next(path for path in job.result.paths if path.suffix == ".mp4")
    frames = decoded_frames(mp4)  # 64x64 faces, upscaled 4x by default for a small model
    assert len(frames) == 10
    assert read_clip_recipe(mp4) == job.recipe
    first = frames[0].reshape(64, 4, 64, 4, 3).mean(axis=(1, 3))
    error = np.mean((first - tiny_model.sample(seeds=[1])[0]) ** 2)
    assert 10 * np.log10(255**2 / error) > 30


def test_quick_preview_shows_an_animated_gif():
    app = short_clip(open_page(), seconds=2)
    app.button(key="preview").click().run()
    run_until(
        app,
        lambda page: any(caption.startswith("Preview:") for image in page.get("image") for caption in image.captions),
    )
    job = app.session_state["preview_job"]
    assert job.result.paths[0].suffix == ".gif" and job.frame_count < 20


def test_a_long_render_does_not_block_another_session_and_can_be_stopped():
    app = short_clip(open_page(), seconds=30, fps=30)
    app.button(key="render").click().run()
    job = app.session_state["render_job"]

    other_session = with_tiny_model(
        AppTest.from_file(str(REPO_ROOT / "pages" / "sample.py"), default_timeout=TIMEOUT_S)
    )
    other_session.run()
    assert not other_session.exception and len(other_session.get("image")) > 0
    assert not job.finished, "the other session had to wait for the render"

    app.run()
    app.button(key="stop_render_job").click().run()
    run_until(app, lambda page: job.finished)
    app.run()
    assert any("stopped" in error.value for error in app.error)
    assert not app.get("video")


# -- faces from other pages and other walks -----------------------------------------------------------------------


def rendered_clip(app: AppTest) -> tuple[object, np.ndarray]:
    """Render the clip as set up, wait for it, and return its job and decoded MP4 frames shrunk to the 64 px faces."""
    app.button(key="render").click().run()
    run_until(app, lambda page: page.get("video"))
    job = app.session_state["render_job"]
    mp4 = next(path for path in job.result.paths if path.suffix == ".mp4")
    frames = decoded_frames(mp4)
    return job, frames.reshape(len(frames), 64, 4, 64, 4, 3).mean(axis=(2, 4))


def card_captions(app: AppTest) -> list[str]:
    return [caption for image in app.get("image") for caption in image.captions]


def test_a_face_sent_from_edit_becomes_an_edited_keyframe_the_clip_passes(tiny_model):
    face = Face.from_seed(tiny_model, 5).with_edits(move_along(sefa_directions(tiny_model, count=1)[0], 4.0))
    app = with_tiny_model(AppTest.from_file(PAGE, default_timeout=TIMEOUT_S))
    app.session_state[f"handoff_{INTERPOLATE}"] = [face.to_dict()]  # what send_face(INTERPOLATE, face) queues
    app.run()
    assert not app.exception and not app.error
    assert card_captions(app) == ["1: seed 1", "2: seed 7", "3: seed 42", "4: face · seed 5"]
    assert any("edited" in markdown.value for markdown in app.markdown)
    app.run()
    assert len(card_captions(app)) == 4, "the face is added once"

    app.sidebar.checkbox(key="loop").uncheck()
    job, frames = rendered_clip(short_clip(app, seconds=1, fps=13))  # 13 frames: 4 per transition
    assert [keyframe.position for keyframe in job.recipe.keyframe_faces] == [3]
    assert job.recipe.keyframe_faces[0].face == face
    assert psnr(frames[-1], FaceRenderer(tiny_model).render(face)) > 30


def test_the_walk_selector_renders_a_sweep_and_a_circle_loop(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path))  # directions are cached per model: start with none
    app = short_clip(open_page(), seconds=1, fps=15)
    app.radio(key="walk").set_value("sweep").run()
    app.button(key="find_directions").click().run()
    assert not app.exception and not app.error
    app.slider(key="sweep_amount").set_value(6.0)
    app.sidebar.checkbox(key="loop").uncheck().run()
    job, frames = rendered_clip(app)
    assert (job.recipe.walk, job.recipe.sweep.direction, job.recipe.sweep.amount) == ("sweep", "sefa-00", 6.0)
    unedited = tiny_model.sample(seeds=[1])[0]
    assert len(frames) == 15 and psnr(frames[7], unedited) > 30, "the sweep's middle frame is the keyframe's face"
    assert psnr(frames[0], unedited) < psnr(frames[7], unedited) - 3

    app.radio(key="walk").set_value("circle").run()
    app.number_input(key="loop_seed").set_value(9).run()
    job, frames = rendered_clip(app)
    assert job.recipe.walk == "circle" and job.recipe.keyframe_seeds == (9,)
    assert len(frames) == 15 and psnr(frames[0], tiny_model.sample(seeds=[9])[0]) > 30
    steps = [np.abs(a - b).mean() for a, b in itertools.pairwise(frames)]
    assert np.abs(frames[-1] - frames[0]).mean() < 2 * np.median(steps), "the loop closes"
