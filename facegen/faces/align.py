"""Face alignment as FFHQ was aligned (Karras et al. 2019, the dataset's `recreate_aligned_images`).

An oriented square ("quad") is built from the eye and mouth positions: centred a little below the eyes, turned with
the face, about twice the eye distance wide (or 1.8 times the eye-to-mouth distance, whichever is larger). The photo
is shrunk when the quad is far larger than the output, cropped around the quad, padded by reflection where the quad
leaves the photo (the padding blurred and faded to the median colour, so the model never sees a hard mirrored
border), and the quad is resampled to a square 4x the output size, then reduced with Lanczos.

FFHQ placed the quad from dlib's 68 landmarks; MTCNN's five give the same eye centres and mouth corners.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage
from PIL import Image

from facegen.errors import FacegenError
from facegen.faces.detect import MIN_FACE_SIZE, DetectedFace, FaceDetector, detect_faces

SUPERSAMPLING = 4  # FFHQ resampled its quads to 4096 px for 1024 px images
MIN_OUTPUT_SIZE, MAX_OUTPUT_SIZE = 8, 4096


@dataclass(frozen=True)
class FaceQuad:
    """The oriented square to cut out: corners [4, 2] (x, y) in order top-left, bottom-left, bottom-right,
    top-right of the aligned face, and its side length in pixels."""

    corners: np.ndarray
    side: float


def ffhq_quad(landmarks: np.ndarray) -> FaceQuad:
    """The FFHQ crop for five landmarks (eyes, nose, mouth corners in image-left/right order), in photo pixels."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    eye_left, eye_right, _, mouth_left, mouth_right = landmarks
    eye_centre = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) / 2 - eye_centre
    # the horizontal axis bisects the eye line and the mouth line turned by 90 degrees
    axis_x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    axis_x /= np.hypot(*axis_x)
    axis_x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    axis_y = np.flipud(axis_x) * [-1, 1]
    centre = eye_centre + eye_to_mouth * 0.1
    corners = np.stack([centre - axis_x - axis_y, centre - axis_x + axis_y, centre + axis_x + axis_y, centre + axis_x - axis_y])
    return FaceQuad(corners, float(np.hypot(*axis_x) * 2))


def check_output_size(size: int) -> int:
    if not MIN_OUTPUT_SIZE <= size <= MAX_OUTPUT_SIZE:
        raise FacegenError(f"Aligned size {size} is outside {MIN_OUTPUT_SIZE}..{MAX_OUTPUT_SIZE} pixels; use e.g. 256.")
    return int(size)


def align_face(photo: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """The face with these landmarks cut out of a uint8 RGB photo as FFHQ's recipe does: uint8 [size, size, 3]."""
    size = check_output_size(size)
    quad = ffhq_quad(landmarks)
    corners, side = quad.corners.copy(), quad.side
    image = Image.fromarray(photo)

    shrink = int(np.floor(side / size * 0.5))
    if shrink > 1:
        image = image.resize(
            (int(np.rint(image.size[0] / shrink)), int(np.rint(image.size[1] / shrink))), Image.LANCZOS
        )
        corners /= shrink
        side /= shrink

    border = max(int(np.rint(side * 0.1)), 3)
    left, top = int(np.floor(corners[:, 0].min())), int(np.floor(corners[:, 1].min()))
    right, bottom = int(np.ceil(corners[:, 0].max())), int(np.ceil(corners[:, 1].max()))
    crop = (max(left - border, 0), max(top - border, 0), min(right + border, image.size[0]), min(bottom + border, image.size[1]))
    if crop[2] - crop[0] < image.size[0] or crop[3] - crop[1] < image.size[1]:
        image = image.crop(crop)
        corners -= crop[:2]

    left, top = int(np.floor(corners[:, 0].min())), int(np.floor(corners[:, 1].min()))
    right, bottom = int(np.ceil(corners[:, 0].max())), int(np.ceil(corners[:, 1].max()))
    padding = np.array(
        [max(border - left, 0), max(border - top, 0), max(right - image.size[0] + border, 0), max(bottom - image.size[1] + border, 0)]
    )
    if padding.max() > border - 4:
        padding = np.maximum(padding, int(np.rint(side * 0.3)))
        image = Image.fromarray(blurred_reflection_pad(np.asarray(image), padding, side))
        corners += padding[:2]

    supersampled = size * SUPERSAMPLING
    # PIL's QUAD maps the output square's corners to these source points; + 0.5 addresses pixel centres
    image = image.transform((supersampled, supersampled), Image.QUAD, (corners + 0.5).flatten(), Image.BILINEAR)
    return np.asarray(image.resize((size, size), Image.LANCZOS))


def blurred_reflection_pad(pixels: np.ndarray, padding: np.ndarray, side: float) -> np.ndarray:
    """Reflect-pad by (left, top, right, bottom), then blur the padding and fade it towards the median colour,
    more the farther from the photo's edge."""
    left, top, right, bottom = (int(value) for value in padding)
    padded = np.pad(np.float32(pixels), ((top, bottom), (left, right), (0, 0)), "reflect")
    height, width, _ = padded.shape
    rows, cols = np.ogrid[:height, :width]
    # 0 at the photo's edge, rising to 1 at the padding's outer edge (infinite where a side has no padding)
    with np.errstate(divide="ignore", invalid="ignore"):
        beyond_x = 1.0 - np.minimum(np.float32(cols) / left, np.float32(width - 1 - cols) / right)
        beyond_y = 1.0 - np.minimum(np.float32(rows) / top, np.float32(height - 1 - rows) / bottom)
    mask = np.nan_to_num(np.maximum(beyond_x, beyond_y), nan=0.0)[:, :, None]
    blur = side * 0.02
    padded += (scipy.ndimage.gaussian_filter(padded, [blur, blur, 0]) - padded) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    padded += (np.median(padded, axis=(0, 1)) - padded) * np.clip(mask, 0.0, 1.0)
    return np.uint8(np.clip(np.rint(padded), 0, 255))


@dataclass(frozen=True)
class AlignedFace:
    """A photo's chosen face, aligned, with every face found (largest first) for a page to show; `face` is None
    for a photo that was aligned already (`already_aligned`)."""

    image: np.ndarray  # uint8 [size, size, 3]
    face: DetectedFace | None
    face_index: int | None
    faces: tuple[DetectedFace, ...]

    def source(self, photo_name: str) -> dict:
        """Where the face came from, for the recipes of the files made from it."""
        if self.face is None:
            return {"photo": photo_name, "already_aligned": True, "aligned_size": len(self.image)}
        return {
            "photo": photo_name,
            "face_index": self.face_index,
            "faces_found": len(self.faces),
            "box": [round(value, 2) for value in self.face.box],
            "landmarks": np.round(self.face.landmarks, 2).tolist(),
            "aligned_size": len(self.image),
        }


def already_aligned(photo: np.ndarray, size: int) -> AlignedFace:
    """A photo that is an aligned face already (an FFHQ-style crop, a model's own image): its centred square,
    resized to `size` with Lanczos; no detection."""
    size = check_output_size(size)
    height, width = photo.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(photo[top : top + side, left : left + side])
    if side != size:
        square = square.resize((size, size), Image.Resampling.LANCZOS)
    return AlignedFace(np.asarray(square), None, None, ())


def choose_face(faces: list[DetectedFace], face_index: int | None, photo_name: str = "the photo") -> int:
    """The index of the face to use: the largest (0) unless `face_index` picks another, largest first."""
    if not faces:
        raise FacegenError(
            f"No face found in {photo_name}. Use a photo with a clearly visible, roughly frontal face at least "
            f"{MIN_FACE_SIZE} pixels wide."
        )
    index = 0 if face_index is None else face_index
    if not 0 <= index < len(faces):
        count = f"{len(faces)} face{'s' if len(faces) > 1 else ''}"
        raise FacegenError(f"There is no face {index} in {photo_name}: it has {count} (0 to {len(faces) - 1}, largest first).")
    return index


def find_and_align(
    photo: np.ndarray,
    size: int,
    face_index: int | None = None,
    detector: FaceDetector | None = None,
    photo_name: str = "the photo",
) -> AlignedFace:
    """Detect the faces in a uint8 RGB photo and align one (the largest unless `face_index` says) at `size`."""
    size = check_output_size(size)
    faces = detect_faces(photo, detector)
    index = choose_face(faces, face_index, photo_name)
    aligned = align_face(photo, faces[index].landmarks, size)
    return AlignedFace(aligned, faces[index], index, tuple(faces))
