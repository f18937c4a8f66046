"""Latent walks rendered to MP4 and GIF, streamed.

Producer threads generate and compose frames (grid, upscale, seed labels) in batches into small bounded queues; the
calling thread takes the batches in order and pipes them to ffmpeg processes. Torch, PIL and pipe writes release the
GIL, so generation, composition and encoding overlap, and memory stays flat however long the clip. One generation
pass can feed an MP4 and a GIF at once.

A `ClipRecipe` holds everything that decides the frames. It is written beside the clip as JSON and into the MP4's
`comment` metadata; rendering a recipe again gives the same frames. A clip walks through keyframes (seeds, or faces
with their edits), sweeps one direction through a face, or runs a seamless circle or noise loop (facegen.latent).

ffmpeg is imageio-ffmpeg's binary (the one moviepy uses). We drive it directly rather than through moviepy's
FFMPEG_VideoWriter because the GIF encoder needs a second input (its palette) and because failed encodes must
surface as errors: that writer does not check ffmpeg's exit status.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import queue
import re
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from facegen.editing.face import Camera, Face, MoveAlong, check_face, edit_from_dict, edit_to_dict, face_labels
from facegen.editing.layers import check_layers
from facegen.editing.render import FaceRenderer
from facegen.errors import FacegenError
from facegen.generator import Generator, check_noise_mode, check_truncation_psi
from facegen.images import check_writable_dir
from facegen.jobs import JobSlots
from facegen.latent import (
    LOOP_WALKS,
    MAX_SEED,
    MIN_KEYFRAMES,
    KeyframePath,
    LatentLoop,
    check_easing,
    check_interpolation,
    check_walk,
    frame_positions,
    keyframe_seed_table,
    latent_loop,
    path_frame_count,
)
from facegen.schema import check_fields

log = logging.getLogger(__name__)

RECIPE_FORMAT = "facegen-clip"
RECIPE_VERSION = 1
SHA256_TEXT = re.compile(r"[0-9a-fA-F]{64}")
CLIP_SUFFIXES = {".mp4": "mp4", ".gif": "gif"}
SPACES = ("z", "w")
UPSCALE_FILTERS = ("lanczos", "nearest")
FPS_RANGE = (1, 120)
SECONDS_RANGE = (0.1, 600.0)
MAX_FRAMES_PER_TRANSITION = 3600
MAX_GRID_SIDE = 8
MAX_UPSCALE = 8
# Browsers decode H.264 up to level 5.1/5.2 everywhere: 4096 px a side and 4096x2304 pixels a frame.
MAX_FRAME_SIDE = 4096
MAX_FRAME_PIXELS = 4096 * 2304
MAX_CLIP_FRAMES = 36_000  # 20 minutes at 30 fps
# GIFs have no inter-frame compression worth the name: beyond ~1 gigapixel of frames the file runs into gigabytes.
MAX_GIF_MEGAPIXELS = 1_000
GIF_MAX_SIDE = 512
# A GIF's size and encoding time grow with every frame, and GIF players show little past 25 fps: the GIF keeps
# every k-th frame (30 fps -> 15, 60 -> 20), an even stride so motion stays smooth.
GIF_MAX_FPS = 25
GIF_PALETTE_SAMPLES = 16
# Pixels of those frames that vote for the palette. A strided subset holds only colours the frames have, and
# elects the same palette in a fraction of palettegen's time (bench/video.py --upscale 4; figures in bench/README.md).
GIF_PALETTE_PIXELS = 1 << 17
# x264 must keep up with generation, and on CPU it competes with it for cores: 'veryfast' needs about half the CPU
# of 'medium' for a fraction of a dB less at the same CRF.
MP4_PRESET = "veryfast"
# Small frames gain nothing from x264's frame threads, which cost CPU and make the bitstream depend on the
# machine's core count; one thread encodes 256x256 frames far faster than a CPU generates them.
MP4_SINGLE_THREAD_PIXELS = 256 * 256
# CRF 18 is visually lossless at usual sizes. Tiny frames (64x64 faces) have few macroblocks and lose most to
# chroma subsampling: CRF 12 keeps them above the 35 dB PSNR goal for a few kB/s more.
MP4_CRF = 18
MP4_CRF_SMALL_FRAMES = 12
SMALL_FRAME_PIXELS = 256 * 256
DEFAULT_SECONDS_PER_TRANSITION = 2.0
DEFAULT_LOOP_SECONDS = 6.0
# Linux caps one command-line argument at 128 KiB: a recipe holding many stored faces stays in the JSON beside the
# clip only, not in the MP4's metadata.
MP4_COMMENT_MAX_CHARS = 100_000
FRAMES_AHEAD = 2  # finished batches the producers may hold, in all, ahead of the encoder: enough to keep both busy
# On CPU two producers take alternate batches. Small batches leave torch's threads idle between parallel ops
# (and an encoder that preempts one producer stalls only that one), so a second independent batch fills the gaps:
# two producers beat one at 64 and 256 px frames (bench/video.py --compare-producers). They do not split torch's
# threads between them: torch.set_num_threads sets the count every thread started later begins with, so one
# render would change it for every other session of the app. Two, not one per core: each holds a batch in memory,
# and only for models up to 256 px, whose batches are small: a 1024 px StyleGAN batch keeps every thread busy on its
# own and holds gigabytes of activations.
CPU_PRODUCERS = 2
CPU_PRODUCERS_MAX_RESOLUTION = 256

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class FaceKeyframe:
    """A face (a recipe, edits included) as keyframe number `position` (0-based) of a walk."""

    position: int
    face: Face


@dataclass(frozen=True)
class ClipRecipe:
    """Everything that decides a clip's frames.

    `walk` is one of facegen.latent.WALKS:
    - "keyframes": through keyframes. Keyframe seeds are listed keyframe by keyframe: with a grid of C cells the
      first C seeds are every cell's first keyframe. `keyframe_faces` put faces (with their edits) at chosen
      positions among them (one walk only); the seeds fill the other positions in order.
    - "sweep": from -amount to +amount along `sweep` (a direction edit whose amount is the sweep's reach) through
      one face per cell: a seed each, or one face at position 0; its middle frame is the face unedited. With
      `loop` it sweeps back again. It moves in a straight line: `interpolation` does not apply.
    - "circle" / "noise-loop": a seamless loop drawn from one seed per cell, in z (each frame mapped to w on
      StyleGAN models); `loop` is always true, and neither `interpolation` nor `easing` applies (constant pace).

    Length is either `seconds` at `fps`, or `frames_per_transition` between neighbouring keyframes (a sweep's one
    way, a loop's whole turn). `conditioning` is the class index or label vector of conditional models; psi and
    `truncation_cutoff` (psi on the first K ws only) apply to seeds, faces keep their own.
    """

    model: str
    keyframe_seeds: tuple[int, ...]
    walk: str = "keyframes"
    keyframe_faces: tuple[FaceKeyframe, ...] = ()
    sweep: MoveAlong | None = None
    model_sha256: str | None = None
    space: str = "z"
    interpolation: str = "slerp"
    easing: str = "ease-in-out"
    fps: int = 30
    seconds: float | None = None
    frames_per_transition: int | None = None
    loop: bool = False
    grid_rows: int = 1
    grid_cols: int = 1
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    noise_mode: str = "const"
    conditioning: int | tuple[float, ...] | None = None
    upscale: int = 1
    upscale_filter: str = "lanczos"
    seed_labels: bool = False

    def __post_init__(self) -> None:
        _check_whole("Frame rate", self.fps, *FPS_RANGE, "--fps")
        _check_whole("Grid rows", self.grid_rows, 1, MAX_GRID_SIDE, "--grid")
        _check_whole("Grid columns", self.grid_cols, 1, MAX_GRID_SIDE, "--grid")
        _check_whole("Upscale factor", self.upscale, 1, MAX_UPSCALE, "--upscale")
        if self.model_sha256 is not None and not SHA256_TEXT.fullmatch(self.model_sha256):
            raise FacegenError(
                f"model_sha256 must be 64 hexadecimal digits (the weights' sha256), not {self.model_sha256[:70]!r}."
            )
        for name in ("loop", "seed_labels"):
            if not isinstance(getattr(self, name), bool):
                raise FacegenError(f"{name} must be true or false, not {getattr(self, name)!r}.")
        if not all(isinstance(seed, int) and 0 <= seed <= MAX_SEED for seed in self.keyframe_seeds):
            raise FacegenError(f"Keyframe seeds must be whole numbers from 0 to {MAX_SEED}; got {self.keyframe_seeds}.")
        if self.space not in SPACES:
            raise FacegenError(f"Unknown latent space {self.space!r}: choose 'z', or 'w' for StyleGAN models.")
        check_walk(self.walk)
        self._check_walk_keyframes()
        check_interpolation(self.interpolation)
        check_easing(self.easing)
        check_truncation_psi(self.truncation_psi)
        if self.truncation_cutoff is not None:
            _check_whole("Truncation cutoff", self.truncation_cutoff, 1, 10_000, "--cutoff")
        check_noise_mode(self.noise_mode)
        if self.upscale_filter not in UPSCALE_FILTERS:
            raise FacegenError(
                f"Unknown upscale filter {self.upscale_filter!r}; choose {' or '.join(UPSCALE_FILTERS)}."
            )
        if (self.seconds is None) == (self.frames_per_transition is None):
            raise FacegenError("Give the clip's length as seconds or as frames per transition: exactly one of them.")
        if self.seconds is not None:
            low, high = SECONDS_RANGE
            if (
                isinstance(self.seconds, bool)
                or not isinstance(self.seconds, (int, float))
                or not low <= self.seconds <= high
            ):
                raise FacegenError(
                    f"Clip length {self.seconds!r} s is outside {low}-{high:g} s; set --seconds in that range."
                )
        else:
            _check_whole(
                "Frames per transition",
                self.frames_per_transition,
                1,
                MAX_FRAMES_PER_TRANSITION,
                "--frames-per-transition",
            )
        if self.walk == "keyframes" and self.frame_count < self.keyframes_per_walk:
            raise FacegenError(
                f"{self.frame_count} frames cannot show {self.keyframes_per_walk} keyframes; make the clip longer "
                "(more seconds or a higher fps) or use fewer keyframes."
            )
        if self.frame_count > MAX_CLIP_FRAMES:
            raise FacegenError(
                f"The clip would have {self.frame_count:,} frames; the limit is {MAX_CLIP_FRAMES:,}. "
                "Shorten it or lower the fps."
            )

    def _check_walk_keyframes(self) -> None:
        positions = [keyframe.position for keyframe in self.keyframe_faces]
        if self.keyframe_faces and self.cells > 1:
            raise FacegenError("Face keyframes walk one face at a time; use a 1x1 grid (drop --grid).")
        if self.walk != "sweep" and self.sweep is not None:
            raise FacegenError(f"A direction applies to sweeps only, not to a {self.walk} walk; drop it.")
        if self.walk == "keyframes":
            if not self.keyframe_faces:
                keyframe_seed_table(self.keyframe_seeds, self.cells)
                return
            count = len(self.keyframe_seeds) + len(self.keyframe_faces)
            if count < MIN_KEYFRAMES:
                raise FacegenError(
                    f"A clip needs at least {MIN_KEYFRAMES} keyframes; got {count}. Add a seed or another face."
                )
            if len(set(positions)) != len(positions) or not all(
                isinstance(position, int) and 0 <= position < count for position in positions
            ):
                raise FacegenError(
                    f"Face keyframe positions {positions} must be different whole numbers from 0 to {count - 1}."
                )
        elif self.walk == "sweep":
            if self.sweep is None:
                raise FacegenError(
                    "A direction sweep needs a direction: name one with --direction NAME (list them with "
                    "`python -m facegen directions --model M --list`)."
                )
            if not (math.isfinite(self.sweep.amount) and self.sweep.amount > 0):
                raise FacegenError(
                    f"Sweep amount {self.sweep.amount:g} must be a positive number: the sweep runs from -amount to "
                    "+amount (e.g. --amount 3)."
                )
            if self.keyframe_faces:
                if self.keyframe_seeds or positions != [0]:
                    raise FacegenError("A sweep goes through one face: give one face or one seed, not both.")
            elif len(self.keyframe_seeds) != self.cells:
                raise FacegenError(
                    f"A sweep goes through one face per walk: give {self.cells} seed(s) or one face, "
                    f"not {len(self.keyframe_seeds)} seeds."
                )
        else:
            if self.keyframe_faces:
                raise FacegenError(f"A {self.walk} loop needs no keyframes; drop the faces (--faces).")
            if len(self.keyframe_seeds) != self.cells:
                raise FacegenError(
                    f"A {self.walk} loop is drawn from one seed per walk: give {self.cells} seed(s), "
                    f"not {len(self.keyframe_seeds)}."
                )
            if not self.loop:
                raise FacegenError(f"A {self.walk} walk always closes on itself: set loop to true.")
            if self.space != "z":
                raise FacegenError(
                    f"A {self.walk} loop is drawn in z (each frame is mapped to w on StyleGAN models): set space to z."
                )

    @property
    def cells(self) -> int:
        return self.grid_rows * self.grid_cols

    @property
    def keyframes_per_walk(self) -> int:
        """Keyframes of each walk's path: a sweep's two ends, a loop's one start."""
        if self.walk == "sweep":
            return 2
        if self.walk in LOOP_WALKS:
            return 1
        return len(self.keyframe_seeds) // self.cells + len(self.keyframe_faces)

    @property
    def frame_count(self) -> int:
        if self.seconds is not None:
            return max(1, round(self.seconds * self.fps))
        return path_frame_count(self.keyframes_per_walk, self.frames_per_transition, self.loop)

    @property
    def duration_seconds(self) -> float:
        return self.frame_count / self.fps

    def to_dict(self) -> dict:
        values = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        values["keyframe_seeds"] = list(self.keyframe_seeds)
        values["keyframe_faces"] = [
            {"position": keyframe.position, "face": keyframe.face.to_dict()} for keyframe in self.keyframe_faces
        ]
        values["sweep"] = None if self.sweep is None else edit_to_dict(self.sweep)
        if isinstance(self.conditioning, tuple):
            values["conditioning"] = list(self.conditioning)
        return {"format": RECIPE_FORMAT, "version": RECIPE_VERSION, **values}

    def to_json(self, indent: int | None = 2) -> str:
        separators = None if indent else (",", ":")
        return json.dumps(self.to_dict(), indent=indent, separators=separators)

    @classmethod
    def from_json(cls, text: str, source: str = "recipe") -> ClipRecipe:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise FacegenError(
                f"{source} is not valid JSON ({error}). Give a recipe written by facegen video."
            ) from None
        if not isinstance(values, dict) or values.pop("format", None) != RECIPE_FORMAT:
            raise FacegenError(f'{source} is not a facegen clip recipe (no "format": "{RECIPE_FORMAT}").')
        version = values.pop("version", None)
        if version != RECIPE_VERSION:
            raise FacegenError(f"{source} is a version {version} recipe; this facegen reads version {RECIPE_VERSION}.")
        values = dict(values)
        # faces and the sweep are recipes of their own, read by the editing layer's readers
        nested = {"keyframe_faces": _read_face_keyframes(values.pop("keyframe_faces", []), source)}
        sweep = values.pop("sweep", None)
        if sweep is not None:
            sweep = edit_from_dict(sweep, f"{source}: sweep")
            if not isinstance(sweep, MoveAlong):
                raise FacegenError(f'{source}: the sweep must be a direction edit ("kind": "direction").')
            nested["sweep"] = sweep
        typed = check_fields(cls, values, source)
        try:
            return cls(**typed, **nested)
        except FacegenError as error:
            raise FacegenError(f"{source}: {error}") from None


def _read_face_keyframes(values: object, source: str) -> tuple[FaceKeyframe, ...]:
    if not isinstance(values, list) or not all(
        isinstance(item, dict) and set(item) == {"position", "face"} for item in values
    ):
        raise FacegenError(f'{source}: keyframe_faces must be a list of {{"position": N, "face": {{...}}}}.')
    return tuple(
        FaceKeyframe(item["position"], Face.from_dict(item["face"], f"{source}: face keyframe {index + 1}"))
        for index, item in enumerate(values)
    )


def _check_whole(label: str, value: object, low: int, high: int, option: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FacegenError(f"{label} {value!r} is not a whole number from {low} to {high}; set {option} in that range.")


def split_keyframes(keyframes: Sequence[Sequence[int] | Face]) -> tuple[tuple[int, ...], tuple[FaceKeyframe, ...]]:
    """Keyframes listed in order, each its walks' seeds or a face, as a recipe's seeds and face keyframes."""
    seeds = tuple(seed for keyframe in keyframes if not isinstance(keyframe, Face) for seed in keyframe)
    faces = tuple(
        FaceKeyframe(index, keyframe) for index, keyframe in enumerate(keyframes) if isinstance(keyframe, Face)
    )
    return seeds, faces


def seconds_to_frames_per_transition(seconds_per_transition: float, fps: int) -> int:
    return max(1, round(seconds_per_transition * fps))


def suggested_upscale(resolution: int, target: int = 256) -> int:
    """The smallest power-of-two factor that shows a small model's faces at least `target` pixels wide."""
    factor = 1
    while resolution * factor < target and factor < MAX_UPSCALE:
        factor *= 2
    return factor


def recipe_for_generator(recipe: ClipRecipe, generator: Generator) -> ClipRecipe:
    """`recipe` naming the generator's pinned spec and weights, so replaying it loads exactly these weights.

    A recipe that records other weights is refused: its frames would silently differ.
    """
    if generator.identity is None:
        return recipe
    generator.identity.check_weights(recipe.model_sha256)
    return dataclasses.replace(
        recipe, model=str(generator.identity.spec), model_sha256=generator.identity.weights_sha256
    )


# -- frames -----------------------------------------------------------------------------------------------------


class ClipFrames:
    """The frames of one recipe on one generator: latents along the path, images in batches, composed frames."""

    def __init__(self, generator: Generator, recipe: ClipRecipe) -> None:
        if recipe.space == "w" and not generator.has_w_space:
            raise FacegenError(f"Model {generator.info.model_id} has no W space; interpolate in z instead (--space z).")
        generator.check_truncation_cutoff(recipe.truncation_cutoff)
        self.generator = generator
        self.recipe = recipe
        self.face_renderer = FaceRenderer(generator)
        self.path = self._walk_path()
        self.positions = frame_positions(recipe.frame_count, recipe.keyframes_per_walk, recipe.loop)
        self.cell_size = generator.resolution * recipe.upscale
        width, height = recipe.grid_cols * self.cell_size, recipe.grid_rows * self.cell_size
        # yuv420p stores colour per 2x2 block: H.264 in browsers needs even sides
        self.frame_size = (width + width % 2, height + height % 2)
        self._check_frame_size()

    def _walk_path(self) -> KeyframePath | LatentLoop:
        recipe = self.recipe
        if recipe.walk in LOOP_WALKS:
            return latent_loop(recipe.walk, recipe.keyframe_seeds, self.generator.z_dim)
        if recipe.walk == "sweep":
            through = self._keyframe_vectors()[0]
            offset = self._sweep_offset(through.shape[1:])
            reach = recipe.sweep.amount
            return KeyframePath(
                np.stack([through - reach * offset, through + reach * offset]), "linear", recipe.easing, recipe.loop
            )
        return KeyframePath(self._keyframe_vectors(), recipe.interpolation, recipe.easing, recipe.loop)

    def _keyframe_vectors(self) -> np.ndarray:
        """[keyframes, cells, z_dim] latents, or [keyframes, cells, num_ws, w_dim] for a walk in W.

        A face keyframe is where the face renders from: its z, or its ws, after its edits.
        """
        recipe, cells = self.recipe, self.recipe.cells
        faces = {keyframe.position: keyframe.face for keyframe in recipe.keyframe_faces}
        seed_rows = iter(())
        if recipe.keyframe_seeds:
            seed_vectors = self._seed_vectors(recipe.keyframe_seeds)
            seed_rows = iter(seed_vectors.reshape(-1, cells, *seed_vectors.shape[1:]))
        keyframes = len(recipe.keyframe_seeds) // cells + len(faces)
        return np.stack(
            [
                self._face_vector(faces[index], index)[None] if index in faces else next(seed_rows)
                for index in range(keyframes)
            ]
        )

    def _seed_vectors(self, seeds: Sequence[int]) -> np.ndarray:
        z = self.generator.latents_for_seeds(seeds)
        if self.recipe.space == "z":
            return z
        recipe = self.recipe
        return self.generator.map_to_w(z, recipe.conditioning, recipe.truncation_psi, recipe.truncation_cutoff).numpy()

    def _face_vector(self, face: Face, position: int) -> np.ndarray:
        self._check_face_keyframe(face, f"Keyframe {position + 1} (a face)")
        if self.recipe.space == "w":
            return self.face_renderer.edited_ws(face)[0].numpy()
        return self.face_renderer.edited_z(face)[0]

    def _check_face_keyframe(self, face: Face, where: str) -> None:
        """A face keyframe must render in the clip as it renders alone."""
        generator, recipe = self.generator, self.recipe
        check_face(face, generator, where)
        if any(isinstance(edit, Camera) for edit in face.edits):
            raise FacegenError(f"{where} has a camera edit; a clip walks latents, not the camera. Remove that edit.")
        if face.noise_mode != recipe.noise_mode:
            raise FacegenError(
                f"{where} uses noise mode {face.noise_mode!r}, the clip {recipe.noise_mode!r}; set the clip's noise "
                f"mode to {face.noise_mode} (--noise-mode {face.noise_mode})."
            )
        if recipe.space == "w":
            return
        if generator.has_w_space:
            raise FacegenError(
                f"{where}: faces of a StyleGAN model are walked in w, where their edits live; set space to w."
            )
        if face.truncation_psi != recipe.truncation_psi:
            raise FacegenError(
                f"{where} has truncation psi {face.truncation_psi:g}, the clip {recipe.truncation_psi:g}; in z every "
                f"frame takes the clip's psi: set it to {face.truncation_psi:g} (--psi {face.truncation_psi:g})."
            )
        if generator.c_dim and not torch.equal(
            generator.label_matrix(face_labels(face, generator), 1), generator.label_matrix(recipe.conditioning, 1)
        ):
            raise FacegenError(f"{where} has other labels than the clip; in z every frame takes the clip's labels.")

    def _sweep_offset(self, vector_shape: tuple[int, ...]) -> np.ndarray:
        """The move of amount 1 along the sweep's direction, on its layers only (w+) or on all."""
        generator, sweep = self.generator, self.recipe.sweep
        space, size = ("w", generator.w_dim) if generator.has_w_space else ("z", generator.z_dim)
        vector = sweep.vector.numpy()
        if vector.shape != (size,):
            raise FacegenError(
                f"Direction {sweep.direction!r} has {vector.size} values; this model's {space} has {size}. Use a "
                "direction found on this model."
            )
        if space == "z":
            return vector
        if self.recipe.space != "w":
            raise FacegenError(
                "A direction sweep on a StyleGAN model moves in w, where its directions live; set space to w."
            )
        offset = np.zeros(vector_shape, np.float32)
        layers = (
            slice(None)
            if sweep.layers is None
            else list(check_layers(sweep.layers, generator.num_ws, f"Direction {sweep.direction!r}"))
        )
        offset[layers] = vector
        return offset

    def _check_frame_size(self) -> None:
        width, height = self.frame_size
        if max(width, height) > MAX_FRAME_SIDE or width * height > MAX_FRAME_PIXELS:
            raise FacegenError(
                f"Frames would be {width}x{height} pixels; browsers play H.264 up to {MAX_FRAME_SIDE} px a side and "
                f"{MAX_FRAME_PIXELS / 1e6:.1f} megapixels a frame. Lower the upscale or use a smaller grid."
            )

    @property
    def frame_count(self) -> int:
        return len(self.positions)

    def index_batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """Frame indices in batches holding about `batch_size` images (a grid frame holds one per cell)."""
        frames_per_batch = max(1, batch_size // self.recipe.cells)
        for start in range(0, self.frame_count, frames_per_batch):
            yield np.arange(start, min(start + frames_per_batch, self.frame_count))

    def cell_images(self, frame_indices: np.ndarray) -> np.ndarray:
        """Generated images [frames, cells, H, W, 3] uint8 for the given frames."""
        recipe = self.recipe
        vectors = self.path.at(self.positions[frame_indices])
        flat = vectors.reshape(-1, *vectors.shape[2:])
        if recipe.space == "w":
            pixels = self.generator.synthesize_uint8(torch.from_numpy(np.ascontiguousarray(flat)), recipe.noise_mode)
        else:
            pixels = self.generator.sample(
                latents=flat,
                labels=recipe.conditioning,
                truncation_psi=recipe.truncation_psi,
                noise_mode=recipe.noise_mode,
                batch_size=len(flat),
                truncation_cutoff=recipe.truncation_cutoff,
            )
        return pixels.reshape(len(frame_indices), recipe.cells, *pixels.shape[1:])

    def compose(self, cell_images: np.ndarray, frame_indices: np.ndarray) -> np.ndarray:
        """Cells to finished frames [frames, height, width, 3]: grid, upscale, seed labels, even size."""
        count, _, size, _, channels = cell_images.shape
        rows, cols = self.recipe.grid_rows, self.recipe.grid_cols
        frames = (
            cell_images.reshape(count, rows, cols, size, size, channels)
            .transpose(0, 1, 3, 2, 4, 5)
            .reshape(count, rows * size, cols * size, channels)
        )
        frames = self._upscale(frames)
        if self.recipe.seed_labels:
            self._draw_labels(frames, frame_indices)
        width, height = self.frame_size
        if frames.shape[1:3] != (height, width):
            frames = np.pad(frames, ((0, 0), (0, height - frames.shape[1]), (0, width - frames.shape[2]), (0, 0)))
        return np.ascontiguousarray(frames)

    def _upscale(self, frames: np.ndarray) -> np.ndarray:
        factor = self.recipe.upscale
        if factor == 1:
            return frames
        if self.recipe.upscale_filter == "nearest":
            return frames.repeat(factor, axis=1).repeat(factor, axis=2)
        height, width = frames.shape[1] * factor, frames.shape[2] * factor
        return np.stack([np.asarray(Image.fromarray(frame).resize((width, height), Image.LANCZOS)) for frame in frames])

    def _labels(self, frame_indices: np.ndarray) -> list[list[str]]:
        """[frame][cell] the text printed on each face: which keyframes it walks between, the sweep's amount, or
        the loop's seed."""
        recipe = self.recipe
        if recipe.walk in LOOP_WALKS:
            return [[f"{recipe.walk} seed {seed}" for seed in recipe.keyframe_seeds] for _ in frame_indices]
        segments, progress = self.path.segments(self.positions[frame_indices])
        if recipe.walk == "sweep":
            reach = recipe.sweep.amount
            amounts = np.where(segments == 0, progress, 1 - progress) * 2 * reach - reach
            return [[f"{recipe.sweep.direction} {amount:+.1f}"] * recipe.cells for amount in amounts]
        names = self._keyframe_names()
        return [
            [f"{names[segment][cell]} > {names[(segment + 1) % len(names)][cell]}" for cell in range(recipe.cells)]
            for segment in segments
        ]

    def _keyframe_names(self) -> list[list[str]]:
        recipe = self.recipe
        faces = {keyframe.position: keyframe.face for keyframe in recipe.keyframe_faces}
        seed_rows = iter(keyframe_seed_table(recipe.keyframe_seeds, recipe.cells) if recipe.keyframe_seeds else [])
        names = []
        for index in range(recipe.keyframes_per_walk):
            if index in faces:
                names.append(["edited face" if faces[index].edits else "face"])
            else:
                names.append([f"seed {seed}" for seed in next(seed_rows)])
        return names

    def _draw_labels(self, frames: np.ndarray, frame_indices: np.ndarray) -> None:
        font_size = max(10, self.cell_size // 14)
        font = ImageFont.load_default(size=font_size)
        margin = max(2, font_size // 3)
        for frame, labels in zip(frames, self._labels(frame_indices)):
            canvas = Image.fromarray(frame)
            draw = ImageDraw.Draw(canvas)
            for cell, label in enumerate(labels):
                row, col = divmod(cell, self.recipe.grid_cols)
                draw.text(
                    (col * self.cell_size + margin, row * self.cell_size + margin),
                    label,
                    font=font,
                    fill="white",
                    stroke_width=max(1, font_size // 10),
                    stroke_fill="black",
                )
            frame[...] = np.asarray(canvas)

    def frames_at(self, frame_indices: np.ndarray) -> np.ndarray:
        return self.compose(self.cell_images(frame_indices), frame_indices)


# -- encoders ---------------------------------------------------------------------------------------------------


def ffmpeg_exe() -> str:
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as error:
        raise FacegenError(f"No ffmpeg to encode with ({error}). Reinstall it: pip install imageio-ffmpeg.") from None


def _raw_input_args(frame_size: tuple[int, int], fps: Fraction) -> list[str]:
    width, height = frame_size
    return ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", str(fps), "-i", "pipe:0"]


class FfmpegPipe:
    """One ffmpeg process fed raw RGB frames on stdin; its stderr is kept for the error message."""

    def __init__(self, arguments: list[str], description: str) -> None:
        self.description = description
        self.process = subprocess.Popen(
            [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._stderr = b""
        # drained on a thread: a full stderr pipe would stall ffmpeg and then us
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()

    def _read_stderr(self) -> None:
        self._stderr = self.process.stderr.read()

    def _failure(self) -> FacegenError:
        self.process.wait()
        self._stderr_reader.join()
        message = self._stderr.decode(errors="replace").strip().splitlines()
        detail = message[-1] if message else f"exit status {self.process.returncode}"
        return FacegenError(
            f"ffmpeg failed while writing {self.description}: {detail}. Check free disk space and the output path."
        )

    def write(self, frames: np.ndarray) -> None:
        if len(frames) == 0:
            return  # a grid's batch may hold fewer frames than a GIF's stride, and an empty view has no bytes
        try:
            self.process.stdin.write(memoryview(np.ascontiguousarray(frames)).cast("B"))
        except (BrokenPipeError, OSError):
            raise self._failure() from None

    def finish(self) -> None:
        try:
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        if self.process.wait() != 0:
            raise self._failure()
        self._stderr_reader.join()

    def abort(self) -> None:
        self.process.kill()
        self.process.wait()
        self._stderr_reader.join()


@dataclass
class _Output:
    path: Path
    kind: str  # "mp4" or "gif"
    temporary: Path
    frame_stride: int = 1  # the encoder takes every frame_stride-th frame
    encoder: FfmpegPipe | None = None


def mp4_crf(frame_size: tuple[int, int]) -> int:
    return MP4_CRF_SMALL_FRAMES if frame_size[0] * frame_size[1] <= SMALL_FRAME_PIXELS else MP4_CRF


def mp4_arguments(frame_size: tuple[int, int], fps: int, comment: str, temporary: Path) -> list[str]:
    """ffmpeg arguments that encode raw RGB frames from stdin into a browser-playable H.264 MP4 with `comment`."""
    return [
        *_raw_input_args(frame_size, Fraction(fps)),
        "-c:v", "libx264", "-preset", MP4_PRESET, "-crf", str(mp4_crf(frame_size)),
        *(["-threads", "1"] if frame_size[0] * frame_size[1] <= MP4_SINGLE_THREAD_PIXELS else []),
        # convert and tag with one colour matrix, so browsers show the colours the model made
        "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,"
        "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv",
        "-movflags", "+faststart",  # index first: browsers start playing before the whole file arrives
        "-metadata", f"comment={comment}",
        "-f", "mp4", str(temporary),
    ]  # fmt: skip


def gif_size(frame_size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = frame_size
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def gif_frame_stride(fps: int) -> int:
    return math.ceil(fps / GIF_MAX_FPS)


def gif_fps(fps: int) -> Fraction:
    return Fraction(fps, gif_frame_stride(fps))


def _gif_scale(frame_size: tuple[int, int], max_side: int) -> str:
    width, height = gif_size(frame_size, max_side)
    return f"scale={width}:{height}:flags=lanczos" if (width, height) != frame_size else "null"


def _write_gif_palette(sample_frames: np.ndarray, max_side: int, palette_path: Path) -> None:
    """One 256-colour palette for the whole GIF, from frames spread over the clip.

    A single palette with ordered dithering keeps still areas still from frame to frame; per-frame palettes or
    error diffusion make them shimmer.
    """
    stride = math.ceil(math.sqrt(sample_frames[..., 0].size / GIF_PALETTE_PIXELS))
    sample_frames = np.ascontiguousarray(sample_frames[:, ::stride, ::stride])
    frame_size = (sample_frames.shape[2], sample_frames.shape[1])
    filters = f"{_gif_scale(frame_size, max_side)},palettegen=max_colors=256:reserve_transparent=0:stats_mode=full"
    arguments = [
        *_raw_input_args(frame_size, Fraction(1)),
        "-vf", filters, "-frames:v", "1", "-f", "image2", "-c:v", "png", str(palette_path),
    ]  # fmt: skip
    pipe = FfmpegPipe(arguments, "the GIF palette")
    pipe.write(sample_frames)
    pipe.finish()


def _gif_arguments(
    frame_size: tuple[int, int], fps: int, max_side: int, palette_path: Path, temporary: Path
) -> list[str]:
    return [
        *_raw_input_args(frame_size, gif_fps(fps)), "-i", str(palette_path),
        "-filter_complex",
        f"[0:v]{_gif_scale(frame_size, max_side)}[frames];[frames][1:v]paletteuse=dither=bayer:bayer_scale=3",
        "-loop", "0", "-f", "gif", str(temporary),
    ]  # fmt: skip


def check_clip_outputs(out_paths: Sequence[str | Path]) -> list[Path]:
    """Fail before any rendering when an output is not .mp4/.gif or cannot be written."""
    if not out_paths:
        raise FacegenError("No output given: name a .mp4 or .gif file, e.g. --out walk.mp4.")
    paths = []
    for out in out_paths:
        path = Path(out).expanduser()
        if path.suffix.lower() not in CLIP_SUFFIXES:
            raise FacegenError(f"Output {str(out)!r} must end in .mp4 or .gif.")
        if path.is_dir():
            raise FacegenError(f"Output {path} is a folder; give a file name such as {path / 'walk.mp4'}.")
        if path.with_suffix(".json").is_dir():
            raise FacegenError(f"{path.with_suffix('.json')} is a folder, and the clip's recipe goes there. Rename it.")
        check_writable_dir(path.parent)
        if path.exists() and not os.access(path, os.W_OK):
            raise FacegenError(
                f"Output {path} exists and is not writable. Choose another --out or fix its permissions."
            )
        paths.append(path)
    _check_one_writer_per_output(paths)
    return paths


def _check_one_writer_per_output(paths: Sequence[Path]) -> None:
    """Each output file gets one encoder: the same path twice would have two encoders write one file."""
    named: dict[Path, Path] = {}
    for path in paths:
        if path.resolve() in named:
            raise FacegenError(
                f"{path.name} is named twice as an output ({named[path.resolve()]} and {path}); name it once."
            )
        named[path.resolve()] = path
    for suffix, kind in CLIP_SUFFIXES.items():
        same_kind = [path for path in paths if path.suffix.lower() == suffix]
        if len(same_kind) > 1:
            raise FacegenError(
                f"--out names two {kind.upper()}s ({', '.join(path.name for path in same_kind)}); one render writes "
                "at most one MP4 and one GIF. Copy the file for a second one."
            )


def check_clip_size(frames: ClipFrames, kinds: Sequence[str], gif_max_side: int = GIF_MAX_SIDE) -> None:
    if "gif" in kinds:
        width, height = gif_size(frames.frame_size, gif_max_side)
        gif_frames = math.ceil(frames.frame_count / gif_frame_stride(frames.recipe.fps))
        megapixels = gif_frames * width * height / 1e6
        if megapixels > MAX_GIF_MEGAPIXELS:
            raise FacegenError(
                f"The GIF would hold {megapixels:,.0f} megapixels of frames ({gif_frames} frames of {width}x{height}); "
                f"the limit is {MAX_GIF_MEGAPIXELS:,}. Shorten the clip, lower the fps or upscale, or render an MP4."
            )


# -- rendering --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipResult:
    paths: tuple[Path, ...]
    recipe_paths: tuple[Path, ...]
    frame_count: int
    frame_size: tuple[int, int]


class RenderCancelled(FacegenError):
    pass


def _produce(
    frames: ClipFrames,
    batches: Sequence[np.ndarray],
    out: queue.Queue,
    stop: threading.Event,
) -> None:
    """Finished frame batches into `out`, or the exception that stopped them."""
    try:
        for indices in batches:
            if not _put(out, frames.frames_at(indices), stop):
                return
    except BaseException as error:  # handed to the consumer, which re-raises it on the caller's thread
        _put(out, error, stop)


def _put(batches: queue.Queue, item: object, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            batches.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def producer_count(generator: Generator, batches: int) -> int:
    """How many threads generate a clip's batches side by side."""
    if generator.device.type != "cpu" or torch.get_num_threads() < 2:
        return 1  # a GPU runs one batch at a time anyway
    if generator.resolution > CPU_PRODUCERS_MAX_RESOLUTION:
        return 1
    return max(1, min(CPU_PRODUCERS, batches))


def stream_frames(
    frames: ClipFrames, batch_size: int = 16, cancel: threading.Event | None = None
) -> Iterator[np.ndarray]:
    """Finished frames in batches, in order, generated and composed on producer threads ahead of the caller."""
    batches = list(frames.index_batches(batch_size))
    producers = producer_count(frames.generator, len(batches))
    queues = [queue.Queue(maxsize=max(1, FRAMES_AHEAD // producers)) for _ in range(producers)]
    stop = threading.Event()
    workers = [
        threading.Thread(
            target=_produce,
            args=(frames, batches[index::producers], queues[index], stop),
            daemon=True,
            name=f"clip-frames-{index}",
        )
        for index in range(producers)
    ]
    for worker in workers:
        worker.start()
    try:
        for index in range(len(batches)):
            if cancel is not None and cancel.is_set():
                raise RenderCancelled("Render stopped before it finished; nothing was written.")
            item = queues[index % producers].get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        for worker in workers:
            worker.join()


def render_clip(
    generator: Generator,
    recipe: ClipRecipe,
    out_paths: str | Path | Sequence[str | Path],
    progress: ProgressCallback | None = None,
    batch_size: int = 16,
    gif_max_side: int = GIF_MAX_SIDE,
    cancel: threading.Event | None = None,
) -> ClipResult:
    """Render `recipe` into each output (.mp4 and/or .gif) in one generation pass; write the recipe beside them.

    The recipe written names the generator's pinned spec and weights (`recipe_for_generator`). Outputs appear together:
    every clip and recipe is complete in a temporary file before the first one replaces an older file, and a failed
    or cancelled render leaves the older files as they were and no partial file behind.
    """
    recipe = recipe_for_generator(recipe, generator)
    paths = check_clip_outputs([out_paths] if isinstance(out_paths, (str, Path)) else list(out_paths))
    frames = ClipFrames(generator, recipe)
    kinds = [CLIP_SUFFIXES[path.suffix.lower()] for path in paths]
    check_clip_size(frames, kinds, gif_max_side)
    strides = {"mp4": 1, "gif": gif_frame_stride(recipe.fps)}
    outputs = [_Output(path, kind, _temporary_beside(path), strides[kind]) for path, kind in zip(paths, kinds)]
    recipe_paths = tuple(dict.fromkeys(path.with_suffix(".json") for path in paths))
    staged_recipes = {recipe_path: _temporary_beside(recipe_path) for recipe_path in recipe_paths}
    # (temporary, final) pairs: every file is complete before the first rename
    staged = [(output.temporary, output.path) for output in outputs]
    staged += [(temporary, recipe_path) for recipe_path, temporary in staged_recipes.items()]
    with tempfile.TemporaryDirectory(prefix="facegen-clip-") as scratch:
        try:
            _open_encoders(frames, outputs, gif_max_side, Path(scratch))
            done = 0
            with closing(stream_frames(frames, batch_size, cancel)) as batches:
                for batch in batches:
                    for output in outputs:
                        # frames done + offset is the first frame of this batch on the output's stride
                        offset = -done % output.frame_stride
                        output.encoder.write(batch[offset :: output.frame_stride])
                    done += len(batch)
                    if progress is not None:
                        progress(done, frames.frame_count)
            for output in outputs:
                output.encoder.finish()
            for recipe_path, temporary in staged_recipes.items():
                _write_recipe(temporary, recipe, recipe_path)
            for temporary, path in staged:
                os.replace(temporary, path)
        except BaseException:
            for output in outputs:
                if output.encoder is not None and output.encoder.process.poll() is None:
                    output.encoder.abort()
            for temporary, _ in staged:
                temporary.unlink(missing_ok=True)
            raise
    return ClipResult(tuple(paths), recipe_paths, frames.frame_count, frames.frame_size)


def _temporary_beside(path: Path) -> Path:
    """A hidden name next to `path` that no other render uses, so renames stay within one file system."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")


def _write_recipe(temporary: Path, recipe: ClipRecipe, recipe_path: Path) -> None:
    try:
        temporary.write_bytes((recipe.to_json() + "\n").encode())
    except OSError as error:
        raise FacegenError(f"Cannot write {recipe_path}: {error.strerror}. Choose another output path.") from None


def _open_encoders(frames: ClipFrames, outputs: list[_Output], gif_max_side: int, scratch: Path) -> None:
    fps = frames.recipe.fps
    palette_path = scratch / "palette.png"
    if any(output.kind == "gif" for output in outputs):
        samples = np.unique(np.linspace(0, frames.frame_count - 1, GIF_PALETTE_SAMPLES).round().astype(int))
        _write_gif_palette(frames.frames_at(samples), gif_max_side, palette_path)
    for output in outputs:
        if output.kind == "mp4":
            comment = frames.recipe.to_json(indent=None)
            comment = comment if len(comment) <= MP4_COMMENT_MAX_CHARS else ""
            arguments = mp4_arguments(frames.frame_size, fps, comment, output.temporary)
        else:
            arguments = _gif_arguments(frames.frame_size, fps, gif_max_side, palette_path, output.temporary)
        output.encoder = FfmpegPipe(arguments, output.path.name)


# -- reading clips back -----------------------------------------------------------------------------------------


def read_clip_recipe(path: str | Path) -> ClipRecipe:
    """The recipe from a recipe JSON file, or from an MP4's metadata."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FacegenError(f"Recipe {path} does not exist. Give the .json written beside a clip, or the .mp4 itself.")
    if path.suffix.lower() == ".mp4":
        text = mp4_metadata(path).get("comment")
        if not text:
            raise FacegenError(f"{path} carries no facegen recipe in its metadata; use the .json written beside it.")
        return ClipRecipe.from_json(text, source=f"The recipe in {path.name}")
    return ClipRecipe.from_json(path.read_text(errors="replace"), source=str(path))


def mp4_metadata(path: Path) -> dict[str, str]:
    """Container metadata tags, read with ffmpeg's ffmetadata writer (imageio-ffmpeg ships no ffprobe)."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "ffmetadata", "-"],
        capture_output=True,
    )
    if result.returncode != 0:
        raise FacegenError(f"{path} is not a readable video: {result.stderr.decode(errors='replace').strip()[-300:]}")
    tags = {}
    for line in result.stdout.decode(errors="replace").splitlines():
        if line.startswith((";", "[")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        # ffmetadata escapes '=', ';', '#', '\' and newlines with a backslash
        tags[key] = re.sub(r"\\(.)", r"\1", value)
    return tags


# -- background rendering for the app ---------------------------------------------------------------------------


def preview_recipe(recipe: ClipRecipe, fps: int = 8, max_frames_per_transition: int = 12) -> ClipRecipe:
    """A quick version of `recipe`: the same path at a few frames per transition, native size, about the same pace."""
    transitions = recipe.keyframes_per_walk - (0 if recipe.loop else 1)
    seconds_per_transition = recipe.duration_seconds / transitions
    steps = min(max_frames_per_transition, max(2, round(seconds_per_transition * fps)))
    return dataclasses.replace(
        recipe,
        seconds=None,
        frames_per_transition=steps,
        fps=min(FPS_RANGE[1], max(1, round(steps / seconds_per_transition))),
        upscale=1,
    )


class RenderJob:
    """`render_clip` on a background thread, so a page can poll its progress while other sessions stay live."""

    def __init__(
        self,
        generator: Generator,
        recipe: ClipRecipe,
        out_paths: Sequence[str | Path],
        batch_size: int = 16,
        gif_max_side: int = GIF_MAX_SIDE,
        slots: JobSlots | None = None,
        session_id: str = "",
    ) -> None:
        """With `slots`, the render waits for a free slot (`queue_position` says where it stands) before it starts."""
        self.recipe = recipe_for_generator(recipe, generator)
        self.frames_done = 0
        self.frame_count = recipe.frame_count
        self.result: ClipResult | None = None
        self.error: str | None = None
        self._cancel = threading.Event()
        self._slots = slots
        self._ticket = slots.enter(session_id) if slots is not None else None
        self._thread = threading.Thread(
            target=self._run, args=(generator, out_paths, batch_size, gif_max_side), daemon=True, name="clip-render"
        )
        self._thread.start()

    def _run(self, generator: Generator, out_paths: Sequence[str | Path], batch_size: int, gif_max_side: int) -> None:
        try:
            if self._ticket is not None and not self._slots.wait_turn(self._ticket, self._cancel):
                raise RenderCancelled("Render stopped before it started; nothing was written.")
            self.result = render_clip(
                generator, self.recipe, out_paths, self._progress, batch_size, gif_max_side, self._cancel
            )
        except FacegenError as error:
            self.error = str(error)
        except Exception as error:  # a thread's exception would vanish; the page must show something
            log.exception("clip render failed")
            self.error = f"Rendering failed unexpectedly ({type(error).__name__}: {error})."
        finally:
            if self._ticket is not None:
                self._slots.leave(self._ticket)

    def _progress(self, done: int, total: int) -> None:
        self.frames_done = done

    @property
    def finished(self) -> bool:
        return not self._thread.is_alive()

    @property
    def fraction(self) -> float:
        return self.frames_done / self.frame_count

    @property
    def queue_position(self) -> int:
        """0 once the render runs (or without slots); else its place among the renders waiting for a slot."""
        return self._slots.position(self._ticket) if self._ticket is not None else 0

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.finished
