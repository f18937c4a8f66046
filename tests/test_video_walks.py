"""Walks beyond keyframe seeds, as a user gets them: faces with edits as keyframes, a sweep along a direction, circle
and noise loops that close, the truncation cutoff in `sample` and `video`, and recipes that replay every walk."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegen.cli import main
from facegen.editing import Face, FaceRenderer, StyleMix, move_along, save_directions, sefa_directions
from facegen.errors import FacegenError
from facegen.images import png_bytes
from facegen.registry import load_generator
from facegen.video import ClipFrames, ClipRecipe, FaceKeyframe, read_clip_recipe, render_clip
from tests.conftest import TINY_DCGAN_PATH
from tests.media import decoded_frames

NVIDIA = Path(__file__).parent / "fixtures" / "nvidia"
SG2 = str(NVIDIA / "sg2.pkl")
CUTOFF_CASES = [
    case for case in json.loads((NVIDIA / "edits" / "sg2.json").read_text())["cases"] if case["kind"] == "cutoff"
]


@pytest.fixture(scope="module")
def sg2():
    return load_generator(SG2)


@pytest.fixture
def directions_cache(tmp_path, monkeypatch):
    """Directions are cached per model under FACEGEN_CACHE: each test gets its own."""
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    error = np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(error, 1e-12)))


def mean_difference(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.abs(first.astype(np.int16) - second).mean())


def all_frames(frames: ClipFrames) -> np.ndarray:
    return frames.frames_at(np.arange(frames.frame_count))


def save_face(generator, face: Face, path: Path) -> Path:
    path.write_bytes(png_bytes(FaceRenderer(generator).render(face), face.to_dict()))
    return path


def edited_face(generator, seed: int, psi: float = 1.0) -> Face:
    """A face with a direction edit (and a style mix where the model has style layers)."""
    face = Face.from_seed(generator, seed, truncation_psi=psi)
    if generator.has_w_space:
        face = face.with_edits(StyleMix((0, 1, 2), seed=11))
    return face.with_edits(move_along(sefa_directions(generator, count=2)[0], 4.0))


def clip(generator, **values) -> ClipRecipe:
    return ClipRecipe(model=generator.info.model_id, **{"keyframe_seeds": (), "fps": 10, **values})


def run_video(*arguments: str) -> int:
    return main(["video", *arguments])


# -- truncation cutoff ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CUTOFF_CASES, ids=[case["key"] for case in CUTOFF_CASES])
def test_sample_cutoff_gives_nvidias_image_and_records_it(case, tmp_path):
    arguments = ["--seeds", str(case["seed"]), "--psi", str(case["psi"]), "--cutoff", str(case["cutoff"])]
    assert main(["sample", "--model", SG2, *arguments, "--out", f"{tmp_path}/"]) == 0
    png = tmp_path / f"seed{case['seed']:04d}.png"
    with np.load(NVIDIA / "edits" / "sg2.npz") as references:
        expected = references[f"{case['key']}_uint8"]
    assert np.abs(np.asarray(Image.open(png)).astype(int) - expected).max() <= 1
    assert Face.from_png(png).truncation_cutoff == case["cutoff"]


def test_video_cutoff_frames_are_the_samples_of_that_cutoff(sg2, tmp_path):
    walk = tmp_path / "walk.mp4"
    arguments = ["--model", SG2, "--seeds", "5,7", "--psi", "0.5", "--cutoff", "2", "--frames-per-transition", "4"]
    arguments += ["--upscale", "1"]  # frames at the model's own size, to compare with its samples
    assert run_video(*arguments, "--out", str(walk)) == 0
    recipe = read_clip_recipe(walk)
    assert recipe.truncation_cutoff == 2 and recipe.space == "w"
    first, last = ClipFrames(sg2, recipe).frames_at(np.array([0, 4]))
    expected = sg2.sample(seeds=[5, 7], truncation_psi=0.5, truncation_cutoff=2)
    assert np.abs(first.astype(int) - expected[0]).max() <= 1
    assert np.abs(last.astype(int) - expected[1]).max() <= 1
    assert mean_difference(expected[0], sg2.sample(seeds=[5], truncation_psi=0.5)[0]) > 5, "the cutoff must show"


def test_a_circle_loop_takes_the_cutoff_too(sg2):
    loop = clip(sg2, walk="circle", keyframe_seeds=(5,), loop=True, frames_per_transition=6, truncation_psi=0.5)
    cut = ClipFrames(sg2, dataclasses.replace(loop, truncation_cutoff=2))
    expected = sg2.sample(seeds=[5], truncation_psi=0.5, truncation_cutoff=2)[0]
    assert np.abs(cut.frames_at(np.array([0]))[0].astype(int) - expected).max() <= 1


# -- faces as keyframes -----------------------------------------------------------------------------------------


def test_a_w_walk_between_edited_faces_starts_and_ends_on_their_images(sg2):
    renderer = FaceRenderer(sg2)
    start, end = edited_face(sg2, 3, psi=0.7), Face.from_seed(sg2, 8)
    faces = (FaceKeyframe(0, start), FaceKeyframe(2, end))
    recipe = clip(sg2, keyframe_seeds=(20,), keyframe_faces=faces, space="w", frames_per_transition=5)
    frames = ClipFrames(sg2, recipe)
    assert frames.frame_count == 11
    first, middle, last = frames.frames_at(np.array([0, 5, 10]))
    assert np.abs(first.astype(int) - renderer.render(start)).max() <= 1
    assert np.abs(last.astype(int) - renderer.render(end)).max() <= 1
    assert np.abs(middle.astype(int) - sg2.sample(seeds=[20])[0]).max() <= 1, "the seed keyframe between the faces"
    assert mean_difference(renderer.render(start), sg2.sample(seeds=[3], truncation_psi=0.7)[0]) > 5, "edits show"


def test_a_clip_of_edited_faces_opens_and_closes_on_them_through_h264(tiny_model, tmp_path):
    renderer = FaceRenderer(tiny_model)
    start, end = edited_face(tiny_model, 3), edited_face(tiny_model, 8)
    recipe = clip(tiny_model, keyframe_faces=(FaceKeyframe(0, start), FaceKeyframe(1, end)), frames_per_transition=6)
    render_clip(tiny_model, recipe, tmp_path / "walk.mp4")
    decoded = decoded_frames(tmp_path / "walk.mp4")
    assert len(decoded) == 7
    assert psnr(decoded[0], renderer.render(start)) >= 35
    assert psnr(decoded[-1], renderer.render(end)) >= 35
    unedited = tiny_model.sample(seeds=[3])[0]
    assert psnr(decoded[0], renderer.render(start)) > psnr(decoded[0], unedited) + 3, "the clip shows the edit"


def test_cli_walks_through_face_pngs_and_replays_them(tiny_model, tmp_path, capsys):
    first = save_face(tiny_model, edited_face(tiny_model, 3), tmp_path / "first.png")
    second = save_face(tiny_model, Face.from_seed(tiny_model, 9), tmp_path / "second.png")
    walk = tmp_path / "walk.mp4"
    faces = f"{first},{second}"
    arguments = ["--faces", faces, "--seeds", "4", "--frames-per-transition", "3", "--upscale", "1"]
    assert run_video(*arguments, "--out", str(walk)) == 0
    recipe = read_clip_recipe(tmp_path / "walk.json")
    assert recipe.model == Face.from_png(first).model and [keyframe.position for keyframe in recipe.keyframe_faces] == [
        1,
        2,
    ]
    frames = ClipFrames(tiny_model, recipe).frames_at(np.array([0, 3, 6]))
    renderer = FaceRenderer(tiny_model)
    assert np.array_equal(frames[0], tiny_model.sample(seeds=[4])[0])
    assert np.abs(frames[1].astype(int) - renderer.render(Face.from_png(first))).max() <= 1
    assert np.abs(frames[2].astype(int) - renderer.render(Face.from_png(second))).max() <= 1


def test_a_face_of_another_model_or_with_a_camera_is_refused(sg2, tiny_model):
    stranger = Face.from_seed(tiny_model, 1)
    with pytest.raises(FacegenError, match="another model"):
        ClipFrames(
            sg2, clip(sg2, keyframe_seeds=(1,), keyframe_faces=(FaceKeyframe(1, stranger),), space="w", seconds=1)
        )
    with pytest.raises(FacegenError, match="walked in w"):
        face = Face.from_seed(sg2, 1)
        ClipFrames(sg2, clip(sg2, keyframe_seeds=(1,), keyframe_faces=(FaceKeyframe(1, face),), seconds=1))
    with pytest.raises(FacegenError, match="1x1 grid"):
        clip(sg2, keyframe_seeds=(1, 2, 3, 4), keyframe_faces=(FaceKeyframe(1, face),), grid_cols=2, seconds=1)


# -- direction sweeps -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("easing", ["linear", "ease-in-out"])
def test_a_sweeps_middle_frame_is_the_unedited_face_and_its_ends_move_away(sg2, easing):
    face = edited_face(sg2, 4, psi=0.8)
    direction = sefa_directions(sg2, count=1)[0]
    sweep = clip(
        sg2, walk="sweep", keyframe_faces=(FaceKeyframe(0, face),), sweep=move_along(direction, 4.0), space="w",
        frames_per_transition=6, easing=easing,
    )  # fmt: skip
    frames = all_frames(ClipFrames(sg2, sweep))
    assert len(frames) == 7
    unedited = FaceRenderer(sg2).render(face)
    assert np.abs(frames[3].astype(int) - unedited).max() <= 1
    assert (
        np.abs(frames[0].astype(int) - FaceRenderer(sg2).render(face.with_edits(move_along(direction, -4.0)))).max()
        <= 1
    )
    assert min(mean_difference(frames[0], unedited), mean_difference(frames[-1], unedited)) > 3


def test_cli_sweeps_a_named_direction_through_a_seed(tiny_model, tmp_path, directions_cache):
    save_directions(tiny_model, sefa_directions(tiny_model, count=3))
    walk = tmp_path / "sweep.mp4"
    arguments = ["--walk", "sweep", "--direction", "sefa-01", "--amount", "5", "--frames-per-transition", "4"]
    arguments += ["--upscale", "1"]
    assert run_video("--model", str(TINY_DCGAN_PATH), "--seeds", "12", *arguments, "--out", str(walk)) == 0
    recipe = read_clip_recipe(walk)
    assert (recipe.walk, recipe.sweep.direction, recipe.sweep.amount) == ("sweep", "sefa-01", 5.0)
    frames = all_frames(ClipFrames(tiny_model, recipe))
    assert len(frames) == 5 and np.array_equal(frames[2], tiny_model.sample(seeds=[12])[0])
    assert mean_difference(frames[0], frames[2]) > 3


def test_a_looping_sweep_goes_there_and_back(tiny_model):
    direction = sefa_directions(tiny_model, count=1)[0]
    sweep = clip(
        tiny_model, walk="sweep", keyframe_seeds=(2,), sweep=move_along(direction, 3.0), loop=True,
        frames_per_transition=4, easing="linear",
    )  # fmt: skip
    frames = all_frames(ClipFrames(tiny_model, sweep))
    assert len(frames) == 8
    assert np.array_equal(frames[2], frames[6]) and np.array_equal(frames[2], tiny_model.sample(seeds=[2])[0])
    assert np.array_equal(frames[1], frames[3]) is False and np.array_equal(frames[1], frames[7])


# -- seamless loops ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("walk", ["circle", "noise-loop"])
def test_loops_close_the_frame_after_the_last_is_the_first(tiny_model, walk):
    loop = clip(tiny_model, walk=walk, keyframe_seeds=(6,), loop=True, frames_per_transition=24)
    frames = ClipFrames(tiny_model, loop)
    shown = all_frames(frames)
    after_the_last = tiny_model.sample(latents=frames.path.at(np.array([1.0]))[:, 0])[0]
    assert np.array_equal(after_the_last, shown[0])
    steps = [mean_difference(a, b) for a, b in itertools.pairwise(shown)]
    assert mean_difference(shown[-1], shown[0]) < 2 * np.median(steps), "the seam is no bigger than a step"
    assert len({frame.tobytes() for frame in shown}) == 24, "the loop moves"


def test_a_circle_starts_on_its_seeds_face_and_every_latent_has_a_drawn_latents_norm(tiny_model):
    frames = ClipFrames(tiny_model, clip(tiny_model, walk="circle", keyframe_seeds=(6, 7), grid_cols=2, loop=True,
                                         frames_per_transition=8))  # fmt: skip
    first = frames.cell_images(np.array([0]))[0]
    assert np.array_equal(first, tiny_model.sample(seeds=[6, 7]))
    norms = np.linalg.norm(frames.path.at(np.linspace(0, 1, 50)), axis=-1)
    assert np.abs(norms - np.sqrt(tiny_model.z_dim)).max() < 0.25 * np.sqrt(tiny_model.z_dim)


# -- recipes replay ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "walk_arguments",
    [
        ["--walk", "keyframes", "--seeds", "1", "--faces", "FACE"],
        ["--walk", "sweep", "--faces", "FACE", "--direction", "sefa-00", "--loop"],
        ["--walk", "circle"],
        ["--walk", "noise-loop", "--grid", "1x2", "--seeds", "3,4"],
    ],
    ids=["keyframes", "sweep", "circle", "noise-loop"],
)
def test_recipes_of_every_walk_replay_to_the_same_frames(tiny_model, tmp_path, directions_cache, walk_arguments):
    save_directions(tiny_model, sefa_directions(tiny_model, count=2))
    face = save_face(tiny_model, edited_face(tiny_model, 5), tmp_path / "face.png")
    walk_arguments = [str(face) if argument == "FACE" else argument for argument in walk_arguments]
    walk = tmp_path / "walk.mp4"
    common = ["--model", str(TINY_DCGAN_PATH), "--frames-per-transition", "5", "--fps", "10"]
    assert run_video(*common, *walk_arguments, "--out", str(walk)) == 0
    for source in ("walk.json", "walk.mp4"):
        again = tmp_path / f"again-{source}.mp4"
        assert run_video("--recipe", str(tmp_path / source), "--out", str(again)) == 0
        assert np.array_equal(decoded_frames(again), decoded_frames(walk))


# -- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["--walk", "sweep", "--seeds", "1"], "A direction sweep needs --direction NAME"),
        (["--walk", "sweep", "--seeds", "1", "--direction", "nope"], "Unknown direction 'nope'"),
        (["--seeds", "1,2", "--cutoff", "3"], "no style layers, so a truncation cutoff does not apply"),
        (["--seeds", "1,2", "--direction", "sefa-00"], "shape a sweep only"),
        (["--walk", "circle", "--interpolation", "cubic"], "shape keyframe walks, not a circle"),
        (["--walk", "circle", "--seeds", "1,2"], "one seed per walk: give 1 seed(s), not 2"),
        (["--walk", "sweep", "--seeds", "1", "--direction", "sefa-00", "--amount", "-2"], "must be a positive number"),
        (["--walk", "noise-loop", "--space", "w"], "drawn in z"),
        (["--faces", "missing.png"], "missing.png is not an image facegen can read"),
    ],
)
def test_bad_walks_are_one_clear_line(tmp_path, capsys, directions_cache, arguments, problem):
    save_directions(
        load_generator(str(TINY_DCGAN_PATH)), sefa_directions(load_generator(str(TINY_DCGAN_PATH)), count=1)
    )
    code = run_video("--model", str(TINY_DCGAN_PATH), *arguments, "--out", str(tmp_path / "x.mp4"))
    error = capsys.readouterr().err
    assert code == 2 and problem in error and "Traceback" not in error, error
    assert len(error.strip().splitlines()) == 1
    assert not (tmp_path / "x.mp4").exists()


def test_sample_cutoff_on_a_dcgan_is_one_clear_line(tmp_path, capsys):
    code = main(["sample", "--model", str(TINY_DCGAN_PATH), "--seeds", "1", "--cutoff", "2", "--out", f"{tmp_path}/"])
    error = capsys.readouterr().err
    assert code == 2 and "truncation cutoff does not apply" in error and "Traceback" not in error
    assert not list(tmp_path.glob("*.png"))
