"""Latent walks: interpolation, easing, keyframe timing, loops and grids of independent walks."""

import numpy as np
import pytest

from facegen.errors import FacegenError
from facegen.generator import latents_for_seeds
from facegen.latent import (
    EASINGS,
    KeyframePath,
    fill_keyframe_seeds,
    frame_positions,
    keyframe_seed_table,
    lerp,
    path_frame_count,
    slerp,
)

Z_DIM = 512


def seed_latents(*seeds: int) -> np.ndarray:
    return latents_for_seeds(seeds, Z_DIM)


def test_slerp_starts_exactly_on_the_first_latent_and_ends_on_the_second():
    start, end = seed_latents(1, 7)
    assert np.array_equal(slerp(start, end, 0.0), start)
    np.testing.assert_allclose(slerp(start, end, 1.0), end, atol=1e-5)


def test_slerp_stays_on_the_latent_shell_where_lerp_cuts_through_the_middle():
    start, end = seed_latents(1, 7)
    shell = np.sqrt(Z_DIM)
    halfway_arc = np.linalg.norm(slerp(start, end, 0.5))
    halfway_line = np.linalg.norm(lerp(start, end, 0.5))
    assert abs(halfway_arc - shell) / shell < 0.05
    # two random Gaussian latents are nearly orthogonal: the chord's midpoint has ~1/sqrt(2) of their norm
    assert halfway_line < 0.8 * shell


def test_slerp_of_parallel_latents_is_finite():
    start = seed_latents(3)[0]
    assert np.isfinite(slerp(start, 2 * start, np.linspace(0, 1, 5))).all()


@pytest.mark.parametrize("easing", list(EASINGS))
def test_every_easing_runs_from_0_to_1_without_going_back(easing):
    t = np.linspace(0, 1, 101)
    eased = EASINGS[easing](t)
    assert eased[0] == pytest.approx(0) and eased[-1] == pytest.approx(1)
    assert np.all(np.diff(eased) >= 0)


def test_ease_in_out_rests_on_keyframes():
    eased = EASINGS["ease-in-out"](np.array([0.0, 0.01, 0.5, 0.99, 1.0]))
    assert eased[1] < 0.001 and 1 - eased[3] < 0.001 and eased[2] == pytest.approx(0.5)


def test_open_path_frames_land_on_every_keyframe():
    keyframes = seed_latents(1, 7, 42)
    frames = path_frame_count(3, frames_per_transition=10, loop=False)
    assert frames == 21
    path = KeyframePath(keyframes, "slerp", "linear")
    latents = path.at(frame_positions(frames, 3, loop=False))
    assert np.array_equal(latents[0], keyframes[0])
    np.testing.assert_allclose(latents[10], keyframes[1], atol=1e-5)
    np.testing.assert_allclose(latents[20], keyframes[2], atol=1e-5)


def test_loop_stops_one_step_short_of_the_first_keyframe():
    keyframes = seed_latents(1, 7, 42)
    frames = path_frame_count(3, frames_per_transition=10, loop=True)
    assert frames == 30
    path = KeyframePath(keyframes, "slerp", "linear", loop=True)
    positions = frame_positions(frames, 3, loop=True)
    latents = path.at(positions)
    # the frame after the last is the first keyframe again, one ordinary step away
    wrapped = path.at(np.array([3.0]))[0]
    np.testing.assert_allclose(wrapped, keyframes[0], atol=1e-5)
    steps = np.linalg.norm(np.diff(latents, axis=0), axis=1)
    closing_step = np.linalg.norm(wrapped - latents[-1])
    assert closing_step == pytest.approx(np.median(steps), rel=0.2)


def test_open_path_ends_on_the_last_keyframe_not_the_first():
    keyframes = seed_latents(1, 7, 42)
    latents = KeyframePath(keyframes).at(frame_positions(25, 3, loop=False))
    np.testing.assert_allclose(latents[-1], keyframes[-1], atol=1e-5)


def test_cubic_loop_passes_through_keyframes_with_no_kink_where_it_closes():
    keyframes = seed_latents(1, 7, 42, 5)
    path = KeyframePath(keyframes, "cubic", "linear", loop=True)
    np.testing.assert_allclose(path.at(np.arange(4.0)), keyframes, atol=1e-4)
    step = 1e-3
    before_wrap = (path.at(np.array([4.0 - step]))[0] - path.at(np.array([4.0 - 2 * step]))[0]) / step
    after_wrap = (path.at(np.array([step]))[0] - path.at(np.array([0.0]))[0]) / step
    np.testing.assert_allclose(before_wrap, after_wrap, rtol=0.02, atol=0.05)


def test_linear_interpolation_is_a_straight_line():
    start, end = seed_latents(1, 7)
    halfway = KeyframePath(np.stack([start, end]), "linear", "linear").at(np.array([0.5]))[0]
    np.testing.assert_allclose(halfway, (start + end) / 2, atol=1e-5)


def test_grid_cells_walk_independently():
    keyframes = seed_latents(1, 2, 3, 4, 5, 6).reshape(3, 2, Z_DIM)  # 3 keyframes x 2 cells
    positions = frame_positions(12, 3, loop=True)
    grid = KeyframePath(keyframes, loop=True).at(positions)
    assert grid.shape == (12, 2, Z_DIM)
    for cell in range(2):
        alone = KeyframePath(keyframes[:, cell], loop=True).at(positions)
        np.testing.assert_allclose(grid[:, cell], alone, atol=1e-6)


def test_w_paths_interpolate_every_layer():
    ws = np.random.default_rng(0).normal(size=(2, 1, 4, 8)).astype(np.float32)  # keyframes, cells, num_ws, w_dim
    halfway = KeyframePath(ws, "linear", "linear").at(np.array([0.5]))
    assert halfway.shape == (1, 1, 4, 8)
    np.testing.assert_allclose(halfway[0], ws.mean(axis=0), atol=1e-6)


def test_seed_table_goes_keyframe_by_keyframe_as_nvidia_gen_video():
    assert keyframe_seed_table([1, 2, 3, 4, 5, 6], cells=2) == [[1, 2], [3, 4], [5, 6]]


@pytest.mark.parametrize(
    ("seeds", "cells", "problem"),
    [([5], 1, "at least 2 keyframes"), ([1, 2, 3], 2, "at least 2"), ([1, 2, 3, 4, 5], 2, "multiple of 2")],
)
def test_too_few_or_uneven_seeds_say_how_to_fix_it(seeds, cells, problem):
    with pytest.raises(FacegenError, match=problem):
        keyframe_seed_table(seeds, cells)


def test_random_fill_keeps_the_given_seeds_first():
    seeds = fill_keyframe_seeds([5], keyframes_per_cell=3, cells=2)
    assert len(seeds) == 6 and seeds[0] == 5
    assert len(keyframe_seed_table(seeds, 2)) == 3


def test_path_needs_two_keyframes_and_known_names():
    with pytest.raises(FacegenError, match="at least 2 keyframes"):
        KeyframePath(seed_latents(1))
    with pytest.raises(FacegenError, match="easing"):
        KeyframePath(seed_latents(1, 2), easing="bounce")
    with pytest.raises(FacegenError, match="interpolation"):
        KeyframePath(seed_latents(1, 2), interpolation="nearest")
