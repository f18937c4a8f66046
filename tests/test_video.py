"""Clips as a user gets them: MP4/GIF files checked with ffmpeg (imageio-ffmpeg ships no ffprobe, so stream facts
come from `ffmpeg -i` and frames from decoding), recipes that render the same frames, and clear errors."""

import dataclasses
import io
import json
import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from facegen.cli import main as cli_main
from facegen.errors import FacegenError
from facegen.formats.checkpoint import save_generator
from facegen.generator import Generator, ModelInfo
from facegen.images import make_grid, png_bytes
from facegen.models.dcgan import DCGANConfig, DCGANGenerator
from facegen.sampling import SampleRequest, render
from facegen.video import (
    ClipFrames,
    ClipRecipe,
    RenderJob,
    producer_count,
    read_clip_recipe,
    render_clip,
    stream_frames,
)
from tests.conftest import TINY_DCGAN_PATH, run_cli
from tests.media import decoded_frames, stream_facts


class SmoothStyleNet(nn.Module):
    """A stand-in StyleGAN: z -> ws -> an image with its detail in brightness and a gentle tint, as faces have.

    Random conv nets draw colour noise that no 4:2:0 video keeps; this keeps the codec checks meaningful.
    """

    def __init__(self, z_dim: int = 16, w_dim: int = 16, num_ws: int = 3, resolution: int = 32) -> None:
        super().__init__()
        self.mapping_layer = nn.Linear(z_dim, w_dim)
        self.to_brightness = nn.Linear(w_dim * num_ws, 4 * 4)
        self.to_tint = nn.Linear(w_dim * num_ws, 3)
        self.num_ws, self.resolution = num_ws, resolution
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def mapping(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None):
        w = self.w_avg + (self.mapping_layer(z) - self.w_avg) * truncation_psi
        return w[:, None].repeat(1, self.num_ws, 1)

    def synthesis(self, ws, noise_mode="const"):
        brightness = self.to_brightness(ws.flatten(1)).view(-1, 1, 4, 4) * 2
        brightness = F.interpolate(brightness, size=self.resolution, mode="bicubic", align_corners=False)
        tint = self.to_tint(ws.flatten(1))[:, :, None, None] * 0.3
        return torch.tanh(brightness + tint)

    def forward(self, z, c=None, truncation_psi=1.0, noise_mode="const"):
        return self.synthesis(self.mapping(z, c, truncation_psi), noise_mode)


def smooth_generator(resolution: int = 32) -> Generator:
    torch.manual_seed(0)
    info = ModelInfo("smooth", "test", z_dim=16, resolution=resolution, has_w_space=True)
    return Generator(SmoothStyleNet(resolution=resolution), info)


@pytest.fixture
def generator() -> Generator:
    return smooth_generator()


@pytest.fixture
def tiny_dcgan_file(tmp_path):
    torch.manual_seed(0)
    config = DCGANConfig(resolution=32, generator_channels=8)
    return save_generator(tmp_path / "tiny.safetensors", DCGANGenerator(config), "dcgan", config, {"model_id": "tiny"})


def recipe(**changes) -> ClipRecipe:
    values = dict(model="smooth", keyframe_seeds=(1, 7, 42), seconds=1.5, fps=20)
    return ClipRecipe(**{**values, **changes})


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    error = np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(error, 1e-12)))


def sample_page_png(generator: Generator, seeds, psi: float = 1.0) -> np.ndarray:
    """The image the Sample page shows and downloads for these seeds, read back from its PNG."""
    images = render(generator, SampleRequest(generator.info.model_id, list(seeds), psi))
    return np.asarray(Image.open(io.BytesIO(png_bytes(images[0]))).convert("RGB"))


def mean_difference(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.abs(first.astype(np.int16) - second).mean())


# -- the MP4 ----------------------------------------------------------------------------------------------------


def test_mp4_has_fps_times_seconds_frames_in_h264_yuv420p(generator, tmp_path):
    result = render_clip(generator, recipe(seconds=1.5, fps=20), tmp_path / "walk.mp4")
    facts = stream_facts(tmp_path / "walk.mp4")
    assert (facts["codec"], facts["pixel_format"]) == ("h264", "yuv420p")
    assert facts["size"] == (32, 32)
    assert len(decoded_frames(tmp_path / "walk.mp4")) == 30 == result.frame_count


def test_odd_sized_faces_are_padded_to_even_frames(tmp_path):
    render_clip(smooth_generator(resolution=33), recipe(seconds=0.5), tmp_path / "odd.mp4")
    facts = stream_facts(tmp_path / "odd.mp4")
    assert facts["size"] == (34, 34) and facts["pixel_format"] == "yuv420p"


@pytest.mark.parametrize("space", ["z", "w"])
def test_first_frame_is_the_sample_page_image_of_the_first_keyframe(generator, tmp_path, space):
    render_clip(generator, recipe(space=space, truncation_psi=0.7), tmp_path / "walk.mp4")
    first = decoded_frames(tmp_path / "walk.mp4")[0]
    reference = sample_page_png(generator, [1], psi=0.7)
    assert reference.std() > 20, "the stand-in model must draw more than a flat colour for this to mean anything"
    assert psnr(first, reference) > 35


def test_first_frame_of_a_dcgan_checkpoint_matches_its_sample(tiny_model, tmp_path):
    clip = ClipRecipe(model=tiny_model.info.model_id, keyframe_seeds=(1, 7, 42), seconds=1, fps=10, loop=True)
    render_clip(tiny_model, clip, tmp_path / "walk.mp4")
    assert psnr(decoded_frames(tmp_path / "walk.mp4")[0], sample_page_png(tiny_model, [1])) > 35


def test_loop_ends_one_small_step_before_the_first_frame(generator, tmp_path):
    render_clip(generator, recipe(loop=True, easing="linear", seconds=3), tmp_path / "loop.mp4")
    render_clip(generator, recipe(loop=False, easing="linear", seconds=3), tmp_path / "open.mp4")
    looped, opened = decoded_frames(tmp_path / "loop.mp4"), decoded_frames(tmp_path / "open.mp4")
    typical_step = np.median([mean_difference(a, b) for a, b in zip(looped, looped[1:])])
    assert mean_difference(looped[-1], looped[0]) < 2 * typical_step
    assert mean_difference(opened[-1], opened[0]) > 5 * typical_step


def test_grid_clip_opens_on_the_sample_grid_of_the_first_seeds(generator, tmp_path):
    render_clip(generator, recipe(keyframe_seeds=tuple(range(8)), grid_rows=2, grid_cols=2), tmp_path / "grid.mp4")
    first = decoded_frames(tmp_path / "grid.mp4")[0]
    assert first.shape == (64, 64, 3)
    assert psnr(first, make_grid(generator.sample(seeds=[0, 1, 2, 3]), 2)) > 35


def test_nearest_upscale_repeats_each_pixel(generator):
    frames = ClipFrames(generator, recipe(upscale=4, upscale_filter="nearest"))
    first = frames.frames_at(np.array([0]))[0]
    assert frames.frame_size == (128, 128)
    assert np.array_equal(first, generator.sample(seeds=[1])[0].repeat(4, axis=0).repeat(4, axis=1))


def test_lanczos_upscale_is_the_same_face_smoothly_enlarged(generator):
    first = ClipFrames(generator, recipe(upscale=4)).frames_at(np.array([0]))[0]
    shrunk = np.asarray(Image.fromarray(first).resize((32, 32), Image.BOX))
    assert first.shape == (128, 128, 3)
    assert psnr(shrunk, generator.sample(seeds=[1])[0]) > 35


def test_seed_labels_are_drawn_in_each_cells_top_corner_only(generator):
    clip = recipe(keyframe_seeds=(1, 2, 3, 4), grid_cols=2, upscale=4, upscale_filter="nearest")
    plain = ClipFrames(generator, clip).frames_at(np.array([0]))[0]
    labelled = ClipFrames(generator, dataclasses.replace(clip, seed_labels=True)).frames_at(np.array([0]))[0]
    changed_rows, changed_cols = np.nonzero(np.any(plain != labelled, axis=2))
    assert len(changed_rows) > 50
    assert changed_rows.max() < 40, "labels stay in the top strip of the face"
    assert {0, 1} == set(changed_cols // 128), "each cell of the grid gets its own label"


# -- streaming ---------------------------------------------------------------------------------------------------


def test_streamed_frames_come_in_order_across_producers_and_leave_torch_threads_alone(generator):
    frames = ClipFrames(generator, recipe(seconds=2.35, fps=20))  # 47 frames: 10 batches of 5, the last short
    threads_before = torch.get_num_threads()
    assert producer_count(generator, 10) == min(2, threads_before)
    assert producer_count(smooth_generator(resolution=512), 10) == 1, "large models keep one batch in memory"
    streamed = np.concatenate(list(stream_frames(frames, batch_size=5)))
    # batch by batch as streamed: a batch of 47 may round one pixel differently (matrix kernels vary with its size)
    in_order = np.concatenate([frames.frames_at(indices) for indices in frames.index_batches(5)])
    assert np.array_equal(streamed, in_order)
    threads_seen = []
    checker = threading.Thread(target=lambda: threads_seen.append(torch.get_num_threads()))
    checker.start()
    checker.join()
    assert threads_seen == [threads_before] and torch.get_num_threads() == threads_before


def threads_of_a_new_thread() -> int:
    seen = []
    checker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    checker.start()
    checker.join()
    return seen[0]


def test_two_renders_at_once_both_finish_and_leave_torch_threads_alone(generator, tmp_path):
    # Two sessions of the app render side by side. Streamlit runs each rerun of a page on a new thread, which starts
    # with the process's thread count: no render may change it, not even for a while.
    threads_before = torch.get_num_threads()
    clips = [tmp_path / "first.mp4", tmp_path / "second.mp4"]
    jobs = [RenderJob(generator, recipe(seconds=3, fps=20), [clip], batch_size=2) for clip in clips]
    seen_during = []
    while not all(job.finished for job in jobs):
        seen_during.append(threads_of_a_new_thread())
        time.sleep(0.002)
    assert [job.error for job in jobs] == [None, None]
    assert [len(decoded_frames(clip)) for clip in clips] == [60, 60]
    assert seen_during and set(seen_during) == {threads_before}
    assert threads_of_a_new_thread() == torch.get_num_threads() == threads_before


def test_a_failing_batch_stops_the_render_with_its_error_and_no_file(generator, tmp_path, monkeypatch):
    real_cell_images = ClipFrames.cell_images

    def fail_at_frame_30(self, frame_indices):
        if 30 in frame_indices:
            raise FacegenError("the model ran out of memory at frame 30")
        return real_cell_images(self, frame_indices)

    monkeypatch.setattr(ClipFrames, "cell_images", fail_at_frame_30)
    with pytest.raises(FacegenError, match="frame 30"):
        render_clip(generator, recipe(seconds=3, fps=20), [tmp_path / "walk.mp4", tmp_path / "walk.gif"], batch_size=4)
    assert not list(tmp_path.iterdir())


# -- the GIF ----------------------------------------------------------------------------------------------------


def test_gif_is_palette_based_loops_forever_and_holds_every_frame(generator, tmp_path):
    result = render_clip(generator, recipe(seconds=1, fps=20), tmp_path / "walk.gif")
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.mode == "P" and gif.info["loop"] == 0
        assert gif.n_frames == result.frame_count == 20
        assert gif.info["duration"] == 50  # ms per frame at 20 fps
        first = np.asarray(gif.convert("RGB"))
    assert mean_difference(first, generator.sample(seeds=[1])[0]) < 8


def test_gif_of_a_30_fps_clip_keeps_every_other_frame_at_the_same_pace(generator, tmp_path):
    render_clip(generator, recipe(seconds=2, fps=30), [tmp_path / "walk.gif", tmp_path / "walk.mp4"])
    with Image.open(tmp_path / "walk.gif") as gif:
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
    assert len(durations) == 30
    assert sum(durations) == pytest.approx(2000, abs=20)
    assert set(durations) <= {60, 70}  # 15 fps in whole centiseconds


def test_gif_is_scaled_down_to_a_sensible_size(generator, tmp_path):
    render_clip(generator, recipe(upscale=8, seconds=0.5), tmp_path / "big.gif", gif_max_side=100)
    with Image.open(tmp_path / "big.gif") as gif:
        assert gif.size == (100, 100)


def test_gif_of_an_upscaled_clip_keeps_its_colours(generator, tmp_path):
    clip = recipe(upscale=8, seconds=1, fps=20)  # 256x256 frames: the palette is elected from a subset of pixels
    render_clip(generator, clip, tmp_path / "walk.gif")
    with Image.open(tmp_path / "walk.gif") as gif:
        shown = []
        for index in range(gif.n_frames):
            gif.seek(index)
            shown.append(np.asarray(gif.convert("RGB")))
    expected = ClipFrames(generator, clip).frames_at(np.arange(20))
    assert min(psnr(frame, reference) for frame, reference in zip(shown, expected)) > 30


# -- recipes ----------------------------------------------------------------------------------------------------


def test_recipe_beside_the_clip_and_in_its_metadata_renders_the_same_frames(generator, tmp_path):
    clip = recipe(loop=True, keyframe_seeds=(3, 9, 27, 81), interpolation="cubic", space="w")
    result = render_clip(generator, clip, [tmp_path / "walk.mp4", tmp_path / "walk.gif"])
    assert result.recipe_paths == (tmp_path / "walk.json",)
    assert json.loads((tmp_path / "walk.json").read_text())["keyframe_seeds"] == [3, 9, 27, 81]
    from_json, from_mp4 = read_clip_recipe(tmp_path / "walk.json"), read_clip_recipe(tmp_path / "walk.mp4")
    assert from_json == clip == from_mp4
    render_clip(generator, from_mp4, tmp_path / "again.mp4")
    assert np.array_equal(decoded_frames(tmp_path / "again.mp4"), decoded_frames(tmp_path / "walk.mp4"))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{", "not valid JSON"),
        ('{"format": "other"}', "not a facegen clip recipe"),
        (
            '{"format": "facegen-clip", "version": 1, "model": "m", "keyframe_seeds": [1, 2], "seconds": 1, '
            '"colour": 3}',
            "colour",
        ),
        (
            '{"format": "facegen-clip", "version": 1, "model": "m", "keyframe_seeds": [1, 2], "seconds": 1, '
            '"loop": "yes"}',
            "loop must be true or false",
        ),
        ('{"format": "facegen-clip", "version": 1, "model": "m", "keyframe_seeds": [1, 2.5], "seconds": 1}', "whole"),
    ],
)
def test_broken_recipes_are_named_as_such(text, problem):
    with pytest.raises(FacegenError, match=problem):
        ClipRecipe.from_json(text)


# -- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"keyframe_seeds": (5,)}, "at least 2 keyframes"),
        ({"fps": 0}, "from 1 to 120"),
        ({"fps": 500}, "from 1 to 120"),
        ({"seconds": 0}, "outside 0.1-600"),
        ({"seconds": 5000}, "outside 0.1-600"),
        ({"seconds": 0.1, "fps": 10, "keyframe_seeds": (1, 2, 3)}, "cannot show 3 keyframes"),
        ({"seconds": 600, "fps": 120}, "limit is 36,000"),
        ({"upscale": 9}, "from 1 to 8"),
        ({"space": "x"}, "latent space"),
    ],
)
def test_out_of_range_settings_are_refused_with_the_fix(changes, problem):
    with pytest.raises(FacegenError, match=problem):
        recipe(**changes)


def test_unwritable_output_fails_before_rendering(generator, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(FacegenError, match="Cannot create output folder"):
        render_clip(generator, recipe(), blocker / "walk.mp4")
    with pytest.raises(FacegenError, match=r"must end in \.mp4 or \.gif"):
        render_clip(generator, recipe(), tmp_path / "walk.avi")


def test_clips_too_big_to_play_or_share_are_refused(generator, tmp_path):
    with pytest.raises(FacegenError, match="megapixels of frames"):
        render_clip(
            generator,
            recipe(seconds=600, fps=25, upscale=8, keyframe_seeds=(1, 2, 3, 4), grid_cols=2),
            tmp_path / "long.gif",
        )
    with pytest.raises(FacegenError, match="Lower the upscale or use a smaller grid"):
        render_clip(
            smooth_generator(64),
            recipe(keyframe_seeds=tuple(range(128)), grid_rows=8, grid_cols=8, upscale=8),
            tmp_path / "huge.mp4",
        )
    assert not list(tmp_path.iterdir())


def test_w_walk_on_a_model_without_w_space_says_to_use_z(tiny_dcgan_file, tmp_path):
    from facegen.registry import load_generator

    with pytest.raises(FacegenError, match="no W space"):
        render_clip(load_generator(str(tiny_dcgan_file)), recipe(space="w"), tmp_path / "walk.mp4")


def test_a_stopped_render_leaves_no_file_behind(generator, tmp_path):
    job = RenderJob(generator, recipe(seconds=60, fps=30), [tmp_path / "walk.mp4", tmp_path / "walk.gif"], batch_size=1)
    job.cancel()
    assert job.wait(timeout=60)
    assert "stopped" in job.error
    assert not list(tmp_path.iterdir())


def test_background_render_reports_progress_to_the_last_frame(generator, tmp_path):
    job = RenderJob(generator, recipe(), [tmp_path / "walk.mp4"])
    assert job.wait(timeout=60) and job.error is None
    assert job.frames_done == job.frame_count == 30 and job.fraction == 1.0
    assert job.result.paths == (tmp_path / "walk.mp4",)


# -- the CLI ----------------------------------------------------------------------------------------------------


def test_cli_renders_a_loop_and_replays_its_recipe(tiny_dcgan_file, tmp_path, capsys):
    walk = tmp_path / "walk.mp4"
    code = cli_main(
        [
            "video",
            "--model",
            str(tiny_dcgan_file),
            "--seeds",
            "1,7,42",
            "--seconds",
            "2",
            "--fps",
            "15",
            "--loop",
            "--out",
            str(walk),
            "--out",
            str(tmp_path / "walk.gif"),
        ]
    )
    assert code == 0
    assert str(walk) in capsys.readouterr().out
    assert len(decoded_frames(walk)) == 30
    assert stream_facts(walk)["size"] == (256, 256), "a 32 px model's faces are enlarged 8x by default"
    recorded = json.loads((tmp_path / "walk.json").read_text())
    assert recorded["model_sha256"] and recorded["fps"] == 15 and recorded["loop"] is True
    for source in ("walk.json", "walk.mp4"):
        again = tmp_path / f"again-from-{source}.mp4"
        assert cli_main(["video", "--recipe", str(tmp_path / source), "--out", str(again)]) == 0
        assert np.array_equal(decoded_frames(again), decoded_frames(walk))


def test_cli_random_keyframes_fill_a_grid(tiny_dcgan_file, tmp_path, capsys):
    out = tmp_path / "grid.mp4"
    assert (
        cli_main(
            [
                "video",
                "--model",
                str(tiny_dcgan_file),
                "--random-keyframes",
                "3",
                "--grid",
                "2x3",
                "--frames-per-transition",
                "4",
                "--upscale",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert len(read_clip_recipe(out).keyframe_seeds) == 18
    assert len(decoded_frames(out)) == 2 * 4 + 1
    assert stream_facts(out)["size"] == (96, 64)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["--seeds", "5"], "at least 2 keyframes"),
        (["--seeds", "1,2", "--fps", "0"], "from 1 to 120"),
        (["--seeds", "1,2", "--seconds", "700"], "outside 0.1-600"),
        (["--seeds", "1,2", "--grid", "2by2"], "ROWSxCOLS"),
    ],
)
def test_cli_bad_input_is_one_clear_line(tiny_dcgan_file, tmp_path, capsys, arguments, problem):
    code = cli_main(["video", "--model", str(tiny_dcgan_file), *arguments, "--out", str(tmp_path / "x.mp4")])
    error = capsys.readouterr().err
    assert code == 2 and problem in error and "Traceback" not in error
    assert not (tmp_path / "x.mp4").exists()


def test_cli_refuses_to_change_a_replayed_recipe_or_its_model(tiny_dcgan_file, tmp_path, capsys):
    assert (
        cli_main(
            [
                "video",
                "--model",
                str(tiny_dcgan_file),
                "--seeds",
                "1,2",
                "--seconds",
                "0.5",
                "--out",
                str(tmp_path / "walk.mp4"),
            ]
        )
        == 0
    )
    assert (
        cli_main(["video", "--recipe", str(tmp_path / "walk.json"), "--fps", "60", "--out", str(tmp_path / "b.mp4")])
        == 2
    )
    assert "--fps cannot change it" in capsys.readouterr().err
    torch.manual_seed(1)
    config = DCGANConfig(resolution=32, generator_channels=8)
    other = save_generator(tmp_path / "other.safetensors", DCGANGenerator(config), "dcgan", config, {})
    assert (
        cli_main(
            ["video", "--recipe", str(tmp_path / "walk.json"), "--model", str(other), "--out", str(tmp_path / "c.mp4")]
        )
        == 2
    )
    assert "weights differ" in capsys.readouterr().err


@pytest.mark.slow
def test_the_readme_command_makes_a_six_second_loop(tiny_model, tmp_path):
    result = run_cli(
        "video",
        "--model",
        str(TINY_DCGAN_PATH),
        "--seeds",
        "1,7,42",
        "--seconds",
        "6",
        "--fps",
        "30",
        "--loop",
        "--out",
        str(tmp_path / "walk.mp4"),
    )
    assert result.returncode == 0, result.stderr
    assert "180/180" in result.stderr  # the progress bar ran to the end
    frames = decoded_frames(tmp_path / "walk.mp4")
    assert len(frames) == 180
    # a 64 px model's clip is enlarged 4x with Lanczos by default, as the Sample page shows its faces
    first_face = Image.fromarray(sample_page_png(tiny_model, [1])).resize((256, 256), Image.Resampling.LANCZOS)
    assert frames[0].shape == (256, 256, 3) and psnr(frames[0], np.asarray(first_face)) > 35


def test_w_walk_on_a_stylegan2_pickle_opens_on_the_sample_image(tmp_path):
    """A real-format StyleGAN2 network, walked in W: frame 0 is its sample of the first seed."""
    from facegen.registry import load_generator

    stylegan = load_generator("tests/fixtures/nvidia/sg2.pkl")
    clip = ClipRecipe(model="sg2.pkl", keyframe_seeds=(1, 7), space="w", frames_per_transition=5, fps=10, loop=True)
    result = render_clip(stylegan, clip, tmp_path / "walk.mp4")
    assert result.frame_count == 10 == len(decoded_frames(tmp_path / "walk.mp4"))
    first = ClipFrames(stylegan, clip).frames_at(np.array([0]))[0]
    assert np.abs(first.astype(int) - stylegan.sample(seeds=[1])[0]).max() <= 1
