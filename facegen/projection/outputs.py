"""What a projection leaves in its folder, and reading a projected face back.

    aligned.png       the aligned target the model was fitted to (where it came from in its `facegen` text chunk)
    projected.png     the projected face, its face recipe in the PNG's `facegen` text chunk (`Face.from_png`)
    face.json         the face recipe (`facegen.editing.Face`): model spec, the weights' sha256, the latent inline
    projected_w.npz   models with a W space: key `w`, float32 [1, num_ws, w_dim], as NVIDIA's projector writes it
    projection.json   how the face was found: steps, seed, settings, final distance, perceptual network, the photo
    progress.mp4      target | current image, one frame per optimisation step

The face's latent is what was optimised: z (DCGAN family, ProGAN, or a StyleGAN projected in z), one w, or w+.
projected_w.npz holds the same face as ws, so NVIDIA's tools read it; rendering face.json, projected.png's recipe or
projected_w.npz (as a w+ face) gives projected.png's pixels, bit for bit.

Everything is written to hidden `.NAME.partial` files first and renamed into place only once every file is
complete, so a failed or interrupted projection leaves the folder as it was.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegen.device import PRECISION_NAMES
from facegen.editing import Face
from facegen.errors import FacegenError
from facegen.formats.projected_w import projected_w_bytes, read_projected_w
from facegen.generator import Generator
from facegen.images import check_writable_dir, png_bytes
from facegen.projection.perceptual import PerceptualDistance
from facegen.projection.projector import ProjectionResult, ProjectionSettings
from facegen.video import FfmpegPipe, mp4_arguments

PROJECTION_FORMAT = "facegen-projection"
PROJECTION_VERSION = 1
ALIGNED_NAME, PROJECTED_NAME, FACE_NAME = "aligned.png", "projected.png", "face.json"
LATENT_NAME, RECORD_NAME, VIDEO_NAME = "projected_w.npz", "projection.json", "progress.mp4"
VIDEO_FPS = 25
VIDEO_BATCH_FRAMES = 16


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def projection_record(
    result: ProjectionResult, settings: ProjectionSettings, perceptual: PerceptualDistance, source: dict
) -> dict:
    """How a projection found its face (projection.json): enough to run it again and judge it."""
    return {
        "format": PROJECTION_FORMAT,
        "version": PROJECTION_VERSION,
        "face": FACE_NAME,
        "space": result.space,
        "steps": result.steps,
        "steps_done": result.steps_done,
        "seed": settings.seed,
        "optimize_noise": settings.optimize_noise,
        "pixel_weight": settings.pixel_weight,
        "distance": result.distance,
        "perceptual_network": perceptual.name,
        "perceptual_sha256": perceptual.sha256,
        "perceptual_precision": PRECISION_NAMES[perceptual.dtype],
        "source": source,
    }


class ProgressVideo:
    """target | current frames streamed into a hidden partial MP4 beside the final one."""

    def __init__(self, path: Path, target: np.ndarray) -> None:
        self.path = path
        self.target = target
        self.pending: list[np.ndarray] = []
        height, width = target.shape[:2]
        self.encoder = FfmpegPipe(
            mp4_arguments((2 * width, height), VIDEO_FPS, "facegen projection: target | current", partial_path(path)),
            path.name,
        )

    def add(self, current: np.ndarray) -> None:
        self.pending.append(np.concatenate([self.target, current], axis=1))
        if len(self.pending) >= VIDEO_BATCH_FRAMES:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.encoder.write(np.stack(self.pending))
            self.pending = []

    def finish(self) -> Path:
        """Finish encoding; the partial file stays hidden until `write_projection` moves it into place."""
        self._flush()
        self.encoder.finish()
        return partial_path(self.path)

    def abort(self) -> None:
        if self.encoder.process.poll() is None:
            self.encoder.abort()
        partial_path(self.path).unlink(missing_ok=True)


@dataclass(frozen=True)
class ProjectionOutputs:
    directory: Path
    aligned: Path
    projected: Path
    face: Path
    latent: Path | None
    record: Path
    video: Path | None
    result: ProjectionResult
    details: dict  # projection.json's content


def write_projection(
    directory: Path, aligned: np.ndarray, result: ProjectionResult, details: dict, video_partial: Path | None
) -> ProjectionOutputs:
    """Write every file as a hidden partial, then rename them all into place; on failure remove the partials."""
    check_writable_dir(directory)
    recipe = result.face.to_dict()
    contents = {
        directory / ALIGNED_NAME: png_bytes(aligned, {"format": "facegen-aligned", "source": details["source"]}),
        directory / PROJECTED_NAME: png_bytes(result.image, recipe),
        directory / FACE_NAME: (result.face.to_json(indent=2) + "\n").encode(),
        directory / RECORD_NAME: (json.dumps(details, indent=2) + "\n").encode(),
    }
    if result.w is not None:
        contents[directory / LATENT_NAME] = projected_w_bytes(result.w)
    partials = [partial_path(path) for path in contents] + ([video_partial] if video_partial else [])
    try:
        for path, data in contents.items():
            partial_path(path).write_bytes(data)
        if video_partial is not None:
            os.replace(video_partial, directory / VIDEO_NAME)
        for path in contents:
            os.replace(partial_path(path), path)
    except OSError as error:
        for partial in partials:
            partial.unlink(missing_ok=True)
        raise FacegenError(f"Cannot write the projection into {directory}: {error.strerror}. Choose another --out.") from None
    return ProjectionOutputs(
        directory=directory,
        aligned=directory / ALIGNED_NAME,
        projected=directory / PROJECTED_NAME,
        face=directory / FACE_NAME,
        latent=directory / LATENT_NAME if result.w is not None else None,
        record=directory / RECORD_NAME,
        video=directory / VIDEO_NAME if video_partial is not None else None,
        result=result,
        details=details,
    )


# -- reading a projected face back ------------------------------------------------------------------------------


def load_projected_face(path: str | Path) -> Face:
    """The face of a projection: its folder, its face.json or its projected.png. Render it with
    `facegen.editing.render_face` on `registry.load_recorded_generator(face.model, face.model_sha256, ...)`."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / FACE_NAME
    if not path.is_file():
        raise FacegenError(f"{path} does not exist. Give a projection folder, its face.json or its projected.png.")
    if path.suffix.lower() == ".png":
        return Face.from_png(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise FacegenError(f"Cannot read {path} ({error}). Give the face.json a projection wrote.") from None
    return Face.from_json(text, str(path))


def face_from_projected_w(path: str | Path, generator: Generator) -> Face:
    """A projected_w.npz (ours or NVIDIA's projector's) as a w+ face of `generator`, the model it was projected on."""
    ws = read_projected_w(path)
    return Face.from_latent(generator, "w+", ws[0])
