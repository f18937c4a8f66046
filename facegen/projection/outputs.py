"""What a projection leaves in its folder, and reading a projected face back.

    aligned.png       the aligned target the model was fitted to
    projected.png     the projected face, its face recipe in the PNG's `facegen` text chunk
    face.json         the face recipe: model spec, the weights' sha256, latent space, and where the latent is
    projected_w.npz   models with a W space: key `w`, float32 [1, num_ws, w_dim], as NVIDIA's projector writes it
    progress.mp4      target | current image, one frame per optimisation step

Models without a W space (DCGAN family, ProGAN) have no projected_w.npz: their z, float32 [1, z_dim], is stored in
face.json under "z". A StyleGAN projected in z keeps its z there too, and its w (the z mapped) in the npz.

Everything is written to hidden `.NAME.partial` files first and renamed into place only once every file is
complete, so a failed or interrupted projection leaves the folder as it was.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegen.errors import FacegenError
from facegen.generator import Generator
from facegen.images import check_writable_dir, png_bytes
from facegen.projection.projector import ProjectionResult, ProjectionSettings, render_latent
from facegen.video import FfmpegPipe, mp4_arguments, model_fingerprint

FACE_FORMAT = "facegen-face"
FACE_VERSION = 1
ALIGNED_NAME, PROJECTED_NAME, FACE_NAME = "aligned.png", "projected.png", "face.json"
LATENT_NAME, VIDEO_NAME = "projected_w.npz", "progress.mp4"
VIDEO_FPS = 25
VIDEO_BATCH_FRAMES = 16


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def face_recipe(
    model_spec: str,
    generator: Generator,
    result: ProjectionResult,
    settings: ProjectionSettings,
    perceptual: tuple[str, str],
    source: dict,
) -> dict:
    """The face recipe of a projection: what renders the face again, and how it was found.

    This is the one place that decides the recipe's content, so it can become the face-editing `Face` later.
    """
    return {
        "format": FACE_FORMAT,
        "version": FACE_VERSION,
        "model": model_spec,
        "model_sha256": model_fingerprint(model_spec, generator),
        "family": generator.info.family,
        "space": result.space,
        "latent_file": LATENT_NAME if result.w is not None else None,
        "z": None if result.z is None else [float(value) for value in result.z[0]],
        "noise_mode": "const",
        "projection": {
            "steps": result.steps,
            "steps_done": result.steps_done,
            "seed": settings.seed,
            "optimize_noise": settings.optimize_noise,
            "pixel_weight": settings.pixel_weight,
            "distance": result.distance,
            "perceptual_network": perceptual[0],
            "perceptual_sha256": perceptual[1],
        },
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
    video: Path | None
    result: ProjectionResult
    recipe: dict


def npz_bytes(w: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, w=np.asarray(w, np.float32))
    return buffer.getvalue()


def write_projection(
    directory: Path, aligned: np.ndarray, result: ProjectionResult, recipe: dict, video_partial: Path | None
) -> ProjectionOutputs:
    """Write every file as a hidden partial, then rename them all into place; on failure remove the partials."""
    check_writable_dir(directory)
    contents = {
        directory / ALIGNED_NAME: png_bytes(aligned, {"format": "facegen-aligned", "source": recipe["source"]}),
        directory / PROJECTED_NAME: png_bytes(result.image, recipe),
        directory / FACE_NAME: (json.dumps(recipe, indent=2) + "\n").encode(),
    }
    if result.w is not None:
        contents[directory / LATENT_NAME] = npz_bytes(result.w)
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
        video=directory / VIDEO_NAME if video_partial is not None else None,
        result=result,
        recipe=recipe,
    )


# -- reading a projected face back ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectedFace:
    model_spec: str
    model_sha256: str | None
    space: str
    z: np.ndarray | None  # float32 [1, z_dim]
    w: np.ndarray | None  # float32 [1, num_ws, w_dim]
    recipe: dict


def load_projected_face(path: str | Path) -> ProjectedFace:
    """A projection's face.json (or its folder), with its latent loaded from the file it names."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / FACE_NAME
    if not path.is_file():
        raise FacegenError(f"{path} does not exist. Give a projection folder or the face.json in it.")
    try:
        recipe = json.loads(path.read_text())
        if recipe.get("format") != FACE_FORMAT:
            raise ValueError("not a facegen face recipe")
        z = None if recipe.get("z") is None else np.asarray([recipe["z"]], np.float32)
        w = None
        if recipe.get("latent_file"):
            with np.load(path.parent / recipe["latent_file"], allow_pickle=False) as latent:
                w = np.asarray(latent["w"], np.float32)
        space, model = recipe["space"], recipe["model"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise FacegenError(f"{path} is not a readable face recipe ({error}). Project the photo again.") from None
    return ProjectedFace(model, recipe.get("model_sha256"), space, z, w, recipe)


def render_projected_face(face: ProjectedFace, generator: Generator, model_spec: str | None = None) -> np.ndarray:
    """The face as uint8 [R, R, 3]; refuses other weights than the ones it was projected with."""
    fingerprint = model_fingerprint(model_spec or face.model_spec, generator)
    if face.model_sha256 and fingerprint and fingerprint != face.model_sha256:
        raise FacegenError(
            f"The model's weights changed since this face was projected (sha256 {fingerprint[:12]}… now, "
            f"{face.model_sha256[:12]}… in face.json), so it would render as another face. Use the original "
            "weights file, or project the photo again."
        )
    return render_latent(generator, face.z, face.w)
