"""Seeds and latent-space paths."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from facegen.errors import FacegenError

MAX_SEED = 2**32 - 1  # numpy.random.RandomState accepts seeds in [0, 2**32)
MAX_SEEDS_PER_SPEC = 100_000


def parse_seeds(spec: str) -> list[int]:
    """'0-15', '1,7,42' or a mix such as '0-3,42' to a list of seeds, in the order given."""
    seeds: list[int] = []
    text = spec.replace(" ", "").strip(",")  # '1,7,42,' is what a user means by '1,7,42'
    if not text:
        raise FacegenError("No seeds given. Write seeds as a list or ranges, e.g. '0-15' or '1,7,42'.")
    for part in text.split(","):
        match = _parse_part(part, spec)
        seeds.extend(match)
        if len(seeds) > MAX_SEEDS_PER_SPEC:
            raise FacegenError(f"Seed list {spec!r} has more than {MAX_SEEDS_PER_SPEC} seeds; give a shorter range.")
    return seeds


def _parse_part(part: str, spec: str) -> range | list[int]:
    problem = (
        f"Malformed seed list {spec!r} at {part!r}. Write seeds as non-negative integers and ranges, "
        "e.g. '0-15', '1,7,42' or '0-3,42'."
    )
    if not part:
        raise FacegenError(f"Seed list {spec!r} has two commas in a row; remove one, e.g. '1,7,42'.")
    low, dash, high = part.partition("-")
    if not low.isdigit() or (dash and not high.isdigit()):
        raise FacegenError(problem)
    first, last = int(low), int(high) if dash else int(low)
    if last < first:
        raise FacegenError(f"Seed range {part!r} runs backwards; write it as '{last}-{first}'.")
    if last > MAX_SEED:
        raise FacegenError(f"Seed {last} is too large; seeds go from 0 to {MAX_SEED}.")
    return range(first, last + 1) if dash else [first]


def random_seeds(count: int, rng: random.Random | None = None) -> list[int]:
    rng = rng or random.Random()
    return [rng.randrange(0, 100_000) for _ in range(count)]


# -- keyframe paths ---------------------------------------------------------------------------------------------
#
# A clip walks through keyframe latents (z, or w for StyleGAN models). Frame positions are measured in keyframe
# units: position 1.5 is halfway between keyframes 1 and 2. An open path runs from the first keyframe to the last;
# a loop adds the transition from the last keyframe back to the first and stops one frame short of it, so a
# player repeating the clip shows no doubled frame.

MIN_KEYFRAMES = 2
INTERPOLATIONS: tuple[str, ...] = ("slerp", "linear", "cubic")


def _linear_easing(t: np.ndarray) -> np.ndarray:
    return t


def _ease_in_out(t: np.ndarray) -> np.ndarray:
    # cosine ease: zero speed at both keyframes, so every keyframe is held briefly and loops close smoothly
    return (1 - np.cos(np.pi * t)) / 2


def _ease_in(t: np.ndarray) -> np.ndarray:
    return 1 - np.cos(np.pi * t / 2)


def _ease_out(t: np.ndarray) -> np.ndarray:
    return np.sin(np.pi * t / 2)


EASINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "ease-in-out": _ease_in_out,
    "linear": _linear_easing,
    "ease-in": _ease_in,
    "ease-out": _ease_out,
}


def check_interpolation(interpolation: str) -> str:
    if interpolation not in INTERPOLATIONS:
        raise FacegenError(f"Unknown interpolation {interpolation!r}. Choose one of: {', '.join(INTERPOLATIONS)}.")
    return interpolation


def check_easing(easing: str) -> str:
    if easing not in EASINGS:
        raise FacegenError(f"Unknown easing {easing!r}. Choose one of: {', '.join(EASINGS)}.")
    return easing


def lerp(start: np.ndarray, end: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Straight line from `start` (t=0) to `end` (t=1); t broadcasts against the vectors without their last axis."""
    t = np.asarray(t, dtype=np.float64)[..., None]
    return start + (end - start) * t


def slerp(start: np.ndarray, end: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation along the last axis (Shoemake 1985, as White 2016 uses it for GAN latents).

    Gaussian latents live near a sphere of radius sqrt(z_dim); a straight line between two of them cuts through
    the low-density interior (blurry, average faces halfway), the great-circle arc does not. At t=0 the result is
    `start` exactly, so a clip's first frame is the keyframe's own image.
    """
    t = np.asarray(t, dtype=np.float64)[..., None]
    start64, end64 = np.asarray(start, np.float64), np.asarray(end, np.float64)
    norms = np.linalg.norm(start64, axis=-1, keepdims=True) * np.linalg.norm(end64, axis=-1, keepdims=True)
    cosine = np.clip(np.sum(start64 * end64, axis=-1, keepdims=True) / np.maximum(norms, 1e-30), -1.0, 1.0)
    angle = np.arccos(cosine)
    sine = np.sin(angle)
    # (anti)parallel vectors have no unique arc; a straight line is the honest answer there
    degenerate = sine < 1e-6
    safe_sine = np.where(degenerate, 1.0, sine)
    start_weight = np.where(degenerate, 1 - t, np.sin((1 - t) * angle) / safe_sine)
    end_weight = np.where(degenerate, t, np.sin(t * angle) / safe_sine)
    return (start_weight * start64 + end_weight * end64).astype(np.result_type(start, end))


def path_frame_count(keyframe_count: int, frames_per_transition: int, loop: bool) -> int:
    """Frames of a path with `frames_per_transition` steps between keyframes; an open path ends on its last keyframe."""
    transitions = keyframe_count if loop else keyframe_count - 1
    return transitions * frames_per_transition + (0 if loop else 1)


def frame_positions(frame_count: int, keyframe_count: int, loop: bool) -> np.ndarray:
    """Where each frame sits on the path, in keyframe units, evenly spaced.

    Integer arithmetic before the division keeps keyframe frames exact (position 2.0, not 1.9999999).
    """
    frames = np.arange(frame_count)
    if loop:
        return frames * keyframe_count / frame_count
    if frame_count == 1:
        return np.zeros(1)
    return frames * (keyframe_count - 1) / (frame_count - 1)


@dataclass(frozen=True, eq=False)
class KeyframePath:
    """A walk through keyframes [K, ...]: vectors along the last axis, any independent walks on the axes between.

    `interpolation` is 'slerp' or 'linear' between neighbouring keyframes, or 'cubic' for a C2 spline through all
    of them (periodic when looping), as NVIDIA's gen_video.py walks W. `easing` reshapes time within each
    transition.
    """

    keyframes: np.ndarray
    interpolation: str = "slerp"
    easing: str = "ease-in-out"
    loop: bool = False

    def __post_init__(self) -> None:
        if len(self.keyframes) < MIN_KEYFRAMES:
            raise FacegenError(f"A path needs at least {MIN_KEYFRAMES} keyframes; got {len(self.keyframes)}.")
        check_interpolation(self.interpolation)
        check_easing(self.easing)

    @property
    def keyframe_count(self) -> int:
        return len(self.keyframes)

    @property
    def transition_count(self) -> int:
        return self.keyframe_count if self.loop else self.keyframe_count - 1

    def segments(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each position's transition index and its eased progress through that transition, in [0, 1]."""
        positions = np.asarray(positions, dtype=np.float64)
        segment = np.clip(np.floor(positions).astype(np.int64), 0, self.transition_count - 1)
        progress = np.clip(positions - segment, 0.0, 1.0)
        return segment, EASINGS[self.easing](progress)

    def at(self, positions: np.ndarray) -> np.ndarray:
        """The path's vectors at `positions` (keyframe units): [N, ...] for N positions."""
        segment, progress = self.segments(positions)
        if self.interpolation == "cubic":
            return self._spline(segment + progress).astype(self.keyframes.dtype)
        start = self.keyframes[segment]
        end = self.keyframes[(segment + 1) % self.keyframe_count]
        progress = progress.reshape(-1, *[1] * (self.keyframes.ndim - 2))
        interpolate = slerp if self.interpolation == "slerp" else lerp
        return interpolate(start, end, progress).astype(self.keyframes.dtype)

    @cached_property
    def _spline(self) -> Callable[[np.ndarray], np.ndarray]:
        # imported here: scipy.interpolate is slow to import and only cubic paths need it
        from scipy.interpolate import CubicSpline

        values = self.keyframes.astype(np.float64)
        if self.loop:
            values = np.concatenate([values, values[:1]])
            return CubicSpline(np.arange(len(values)), values, axis=0, bc_type="periodic")
        if len(values) == 2:
            return CubicSpline(np.arange(2), values, axis=0, bc_type="natural")
        return CubicSpline(np.arange(len(values)), values, axis=0, bc_type="not-a-knot")


# -- keyframe seeds for clips -----------------------------------------------------------------------------------


def fill_keyframe_seeds(
    seeds: Sequence[int], keyframes_per_cell: int, cells: int = 1, rng: random.Random | None = None
) -> list[int]:
    """The given seeds followed by random ones, up to `keyframes_per_cell` keyframes for each of `cells` walks."""
    if keyframes_per_cell < MIN_KEYFRAMES:
        raise FacegenError(f"Random fill needs at least {MIN_KEYFRAMES} keyframes per walk; got {keyframes_per_cell}.")
    wanted = keyframes_per_cell * cells
    if len(seeds) > wanted:
        raise FacegenError(
            f"{len(seeds)} seeds given but random fill asks for only {wanted} keyframes; raise the keyframe count "
            "or drop seeds."
        )
    return list(seeds) + random_seeds(wanted - len(seeds), rng)


def keyframe_seed_table(seeds: Sequence[int], cells: int = 1) -> list[list[int]]:
    """Seeds as [keyframe][cell] for `cells` independent walks.

    As in NVIDIA's gen_video.py, seeds are taken keyframe by keyframe: the first `cells` seeds are every walk's
    first keyframe, so a grid clip opens on the sample grid of those seeds.
    """
    if cells < 1:
        raise ValueError(f"cells must be positive, not {cells}")
    walks = "" if cells == 1 else f" for each of the {cells} walks of the grid, i.e. {MIN_KEYFRAMES * cells} seeds"
    if len(seeds) < MIN_KEYFRAMES * cells:
        raise FacegenError(
            f"A clip needs at least {MIN_KEYFRAMES} keyframes{walks}; got {len(seeds)} seed(s). Add seeds, or random "
            "ones ('Add random' in the app, --random-keyframes N on the command line)."
        )
    if len(seeds) % cells:
        raise FacegenError(
            f"{len(seeds)} seeds do not split evenly into {cells} walks; give a multiple of {cells} seeds "
            f"(e.g. {len(seeds) - len(seeds) % cells or cells * MIN_KEYFRAMES}), or add random keyframes."
        )
    return [list(seeds[start : start + cells]) for start in range(0, len(seeds), cells)]
