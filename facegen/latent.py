"""Seeds and latent-space paths."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from facegen.errors import FacegenError
from facegen.limits import MAX_SEEDS_PER_REQUEST

MAX_SEED = 2**32 - 1  # numpy.random.RandomState accepts seeds in [0, 2**32)


def parse_seeds(spec: str) -> list[int]:
    """'0-15', '1,7,42' or a mix such as '0-3,42' to a list of seeds, in the order given."""
    text = spec.replace(" ", "").strip(",")  # '1,7,42,' is what a user means by '1,7,42'
    if not text:
        raise FacegenError("No seeds given. Write seeds as a list or ranges, e.g. '0-15' or '1,7,42'.")
    # counted before any range is expanded: '0-4294967295' is 12 characters and would be 150 GB of ints
    count = text.count(",") + 1
    if count <= MAX_SEEDS_PER_REQUEST:
        parts = [_parse_part(part, spec) for part in text.split(",")]
        count = sum(len(part) for part in parts)
    if count > MAX_SEEDS_PER_REQUEST:
        raise FacegenError(
            f"Seed list {_shortened(spec)!r} holds {count:,} seeds; the limit is {MAX_SEEDS_PER_REQUEST:,}. Give a shorter range."
        )
    return [seed for part in parts for seed in part]


def _shortened(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _parse_part(part: str, spec: str) -> range:
    problem = (
        f"Malformed seed list {_shortened(spec)!r} at {_shortened(part)!r}. Write seeds as non-negative integers and ranges, "
        "e.g. '0-15', '1,7,42' or '0-3,42'."
    )
    if not part:
        raise FacegenError(f"Seed list {_shortened(spec)!r} has two commas in a row; remove one, e.g. '1,7,42'.")
    low, dash, high = part.partition("-")
    if not low.isdigit() or (dash and not high.isdigit()):
        raise FacegenError(problem)
    if max(len(low), len(high)) > len(str(MAX_SEED)):
        raise FacegenError(f"Seed {(high or low)[:20]}... is too large; seeds go from 0 to {MAX_SEED}.")
    first, last = int(low), int(high) if dash else int(low)
    if last < first:
        raise FacegenError(f"Seed range {part!r} runs backwards; write it as '{last}-{first}'.")
    if last > MAX_SEED:
        raise FacegenError(f"Seed {last} is too large; seeds go from 0 to {MAX_SEED}.")
    return range(first, last + 1)


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


# -- walks without keyframes ------------------------------------------------------------------------------------
#
# A clip's walk: through keyframes; a sweep along one direction (from -amount to +amount through a face); or a
# seamless loop that needs no keyframes, drawn from a seed. Loops are drawn in z: every point of them is a
# standard Gaussian latent, so every frame is a face the model draws as often as any other.

WALKS: tuple[str, ...] = ("keyframes", "sweep", "circle", "noise-loop")
LOOP_WALKS: tuple[str, ...] = ("circle", "noise-loop")
# harmonics of the noise loop, with amplitudes falling as 1/k: a few slow turns with smaller wobbles on top
NOISE_LOOP_HARMONICS = 4


def check_walk(walk: str) -> str:
    if walk not in WALKS:
        raise FacegenError(f"Unknown walk {walk!r}. Choose one of: {', '.join(WALKS)}.")
    return walk


@dataclass(frozen=True, eq=False)
class LatentLoop:
    """A closed walk through Gaussian latents: z(t) = sum_k amplitude_k (a_k cos 2πkt + b_k sin 2πkt), t in [0, 1).

    With a_k, b_k standard Gaussian and the squared amplitudes summing to 1, every z(t) is itself standard
    Gaussian: it has the norm of a drawn latent (about sqrt(z_dim)) all the way round. One harmonic is the circle
    z(t) = cos(2πt)·a + sin(2πt)·b; more harmonics make a smooth random ("noise") loop. The loop ends where it
    began with matching speed, so a repeating player shows no seam.
    """

    cosines: np.ndarray  # a_k: [harmonics, walks, z_dim]
    sines: np.ndarray  # b_k: [harmonics, walks, z_dim]
    amplitudes: np.ndarray  # [harmonics]

    def at(self, positions: np.ndarray) -> np.ndarray:
        """The loop's latents at `positions` (fractions of the loop): [N, walks, z_dim]."""
        angles = 2 * np.pi * np.outer(np.asarray(positions, dtype=np.float64), np.arange(1, len(self.amplitudes) + 1))
        cosine_weights = np.cos(angles) * self.amplitudes  # [N, harmonics]
        sine_weights = np.sin(angles) * self.amplitudes
        latents = np.einsum("nk,kwd->nwd", cosine_weights, self.cosines)
        latents += np.einsum("nk,kwd->nwd", sine_weights, self.sines)
        return latents.astype(np.float32)


def latent_loop(walk: str, seeds: Sequence[int], z_dim: int) -> LatentLoop:
    """The circle or noise loop of each seed (one walk per seed).

    Each seed's random stream gives a_1, b_1, a_2, b_2, ... in turn; a_1 is the seed's own latent, so a circle
    loop starts on the face that seed samples.
    """
    if walk not in LOOP_WALKS:
        raise ValueError(f"{walk!r} is not a loop walk")
    harmonics = 1 if walk == "circle" else NOISE_LOOP_HARMONICS
    draws = np.stack([np.random.RandomState(seed).randn(2 * harmonics, z_dim) for seed in seeds], axis=1)
    amplitudes = 1.0 / np.arange(1, harmonics + 1)
    return LatentLoop(draws[0::2], draws[1::2], amplitudes / np.linalg.norm(amplitudes))
