"""From a photo to a projected face in a folder: detection, alignment, projection, outputs. In the foreground
(`project_photo`, the CLI) or on a background thread a page can poll (`ProjectionJob`)."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facegen.errors import FacegenError
from facegen.faces.align import already_aligned, find_and_align
from facegen.generator import Generator
from facegen.images import check_writable_dir
from facegen.projection.outputs import VIDEO_NAME, ProgressVideo, ProjectionOutputs, projection_record, write_projection
from facegen.projection.perceptual import PerceptualDistance
from facegen.projection.projector import ProjectionCallback, ProjectionSettings, ProjectionUpdate, project

log = logging.getLogger(__name__)


def project_photo(
    photo: np.ndarray,
    generator: Generator,
    perceptual: PerceptualDistance,
    out_dir: str | Path,
    settings: ProjectionSettings = ProjectionSettings(),
    face_index: int | None = None,
    photo_name: str = "the photo",
    callback: ProjectionCallback | None = None,
    stop: threading.Event | None = None,
    write_video: bool = True,
    photo_is_aligned: bool = False,
) -> ProjectionOutputs:
    """Find the face in a uint8 RGB photo (the largest unless `face_index` says), align it at the model's
    resolution, project it, and write the projection's files into `out_dir` (see `facegen.projection.outputs`).
    A photo that is an aligned face already (`photo_is_aligned`) is only resized.

    Setting `stop` ends the optimisation early; the latent reached so far is written like a finished one.
    Any failure leaves `out_dir` as it was.
    """
    directory = Path(out_dir).expanduser()
    check_writable_dir(directory)
    settings.space_for(generator)  # an impossible space fails before the slow steps
    if photo_is_aligned:
        aligned = already_aligned(photo, generator.resolution)
    else:
        aligned = find_and_align(photo, generator.resolution, face_index, photo_name=photo_name)
    video = ProgressVideo(directory / VIDEO_NAME, aligned.image) if write_video else None
    try:
        result = project(
            generator, aligned.image, perceptual, settings, callback, stop, frames=video.add if video else None
        )
        video_partial = video.finish() if video else None
    except BaseException:
        if video:
            video.abort()
        raise
    details = projection_record(result, settings, perceptual, aligned.source(photo_name))
    try:
        return write_projection(directory, aligned.image, result, details, video_partial)
    finally:
        if video_partial is not None:
            video_partial.unlink(missing_ok=True)


class ProjectionJob:
    """`project_photo` on a background thread: a page polls `step`, `preview` and `distance`, calls `stop()` to
    finish early with the face reached so far, and reads `outputs` or `error` once `finished`."""

    def __init__(
        self,
        photo: np.ndarray,
        generator: Generator,
        perceptual: PerceptualDistance,
        out_dir: str | Path,
        settings: ProjectionSettings = ProjectionSettings(),
        face_index: int | None = None,
        photo_name: str = "the photo",
        write_video: bool = True,
        photo_is_aligned: bool = False,
    ) -> None:
        self.steps = settings.steps
        self.step = 0
        self.distance: float | None = None
        self.preview: np.ndarray | None = None  # uint8 [R, R, 3], refreshed every settings.preview_every steps
        self.outputs: ProjectionOutputs | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        projection = functools.partial(
            project_photo, photo, generator, perceptual, out_dir, settings, face_index, photo_name, self._update,
            self._stop, write_video, photo_is_aligned,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._run, args=(projection,), daemon=True, name="projection")
        self._thread.start()

    def _run(self, projection: Callable[[], ProjectionOutputs]) -> None:
        try:
            self.outputs = projection()
        except FacegenError as error:
            self.error = str(error)
        except Exception as error:  # a thread's exception would vanish; the page must show something
            log.exception("projection failed")
            self.error = f"Projection failed unexpectedly ({type(error).__name__}: {error})."

    def _update(self, update: ProjectionUpdate) -> None:
        self.step = update.step
        if update.preview is not None:
            self.preview, self.distance = update.preview, update.distance

    @property
    def fraction(self) -> float:
        return self.step / self.steps

    @property
    def finished(self) -> bool:
        return not self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.finished
