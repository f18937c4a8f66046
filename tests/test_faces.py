"""Face detection (MTCNN with the shipped weights), FFHQ alignment and photo reading, as a user sees them."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import skimage.data

from facegen.errors import FacegenError
from facegen.faces.align import align_face, find_and_align
from facegen.faces.detect import detect_faces
from facegen.faces.photo import read_photo
from tests.conftest import run_cli


def test_mtcnn_finds_the_astronauts_face_where_it_is():
    faces = detect_faces(skimage.data.astronaut())
    assert len(faces) == 1
    face = faces[0]
    x1, y1, x2, y2 = face.box
    # Eileen Collins' face spans about x 180-265, y 60-170 of the 512x512 photo
    assert 170 < x1 < 195 and 255 < x2 < 280 and 45 < y1 < 75 and 155 < y2 < 185
    assert face.score > 0.99
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert np.allclose(left_eye, (205, 102), atol=6) and np.allclose(right_eye, (247, 104), atol=6)
    assert left_eye[1] < nose[1] < mouth_left[1] and mouth_left[0] < nose[0] < mouth_right[0]


def test_no_face_in_a_cup_of_coffee():
    coffee = skimage.data.coffee()
    assert detect_faces(coffee) == []
    with pytest.raises(FacegenError, match="No face found in coffee.png"):
        find_and_align(coffee, 64, photo_name="coffee.png")


def test_face_index_picks_among_faces_and_says_how_many_there_are():
    astronaut = skimage.data.astronaut()
    with pytest.raises(FacegenError, match=r"no face 1 in .*: it has 1 face \(0 to 0, largest first\)"):
        find_and_align(astronaut, 64, face_index=1)


def synthetic_face(size: tuple[int, int], eye_left, eye_right, mouth_left, mouth_right) -> np.ndarray:
    """A noise texture with a red blob at the left eye and a blue one at the right eye."""
    height, width = size
    image = np.random.default_rng(0).integers(90, 140, (height, width, 3)).astype(np.float64)
    rows, cols = np.mgrid[:height, :width]
    for (x, y), channel in ((eye_left, 0), (eye_right, 2)):
        blob = np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * 3.0**2))
        image[..., channel] += 115 * blob
        image[..., 1] -= 90 * blob
    return np.clip(image, 0, 255).astype(np.uint8)


def blob_centre(image: np.ndarray, channel: int) -> np.ndarray:
    others = np.delete(image.astype(float), channel, axis=2).max(axis=2)
    weight = np.clip(image[..., channel] - others - 60, 0, None)
    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]]
    return np.array([(cols * weight).sum(), (rows * weight).sum()]) / weight.sum()


@pytest.mark.parametrize(
    "centre, angle_degrees, photo_size",
    [((200, 160), 20, (320, 400)), ((70, 60), -35, (300, 300))],  # the second face leaves the photo: padding
)
def test_alignment_puts_the_eyes_where_ffhqs_recipe_puts_them(centre, angle_degrees, photo_size):
    eye_distance, eye_to_mouth = 60.0, 70.0
    angle = np.radians(angle_degrees)
    across, down = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    eye_centre = np.array(centre, float)
    eyes = eye_centre - across * eye_distance / 2, eye_centre + across * eye_distance / 2
    mouth = eye_centre + down * eye_to_mouth - across * 25, eye_centre + down * eye_to_mouth + across * 25
    landmarks = np.array([eyes[0], eyes[1], eye_centre + down * 40, mouth[0], mouth[1]])
    photo = synthetic_face(photo_size, *eyes, *mouth)
    size = 128
    aligned = align_face(photo, landmarks, size)
    # FFHQ: the square is 2 * max(2 * eye distance, 1.8 * eye-to-mouth) wide, centred 0.1 eye-to-mouth below the
    # eyes' midpoint, turned with the eye line
    side = 2 * max(2 * eye_distance, 1.8 * eye_to_mouth)
    expected_y = size * (0.5 - 0.1 * eye_to_mouth / side)
    expected_left = np.array([size * (0.5 - eye_distance / 2 / side), expected_y])
    expected_right = np.array([size * (0.5 + eye_distance / 2 / side), expected_y])
    assert aligned.shape == (size, size, 3) and aligned.dtype == np.uint8
    # pixel centres: output pixel i covers [i, i + 1), its centre is at i + 0.5
    assert np.abs(blob_centre(aligned, 0) + 0.5 - expected_left).max() < 0.02 * size
    assert np.abs(blob_centre(aligned, 2) + 0.5 - expected_right).max() < 0.02 * size


def test_not_an_image_is_refused(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    with pytest.raises(FacegenError, match="not an image facegen can read"):
        read_photo(text)


def decompression_bomb_png(width: int, height: int) -> bytes:
    """A tiny file declaring an enormous image: a PNG header and almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(decompression_bomb_png(30_000, 30_000))
    with pytest.raises(FacegenError, match="too large to decode safely"):
        read_photo(bomb)


def test_align_cli_writes_the_aligned_face_and_refuses_bad_photos(tmp_path):
    photo = tmp_path / "astronaut.png"
    from PIL import Image

    Image.fromarray(skimage.data.astronaut()).save(photo)
    out = tmp_path / "face.png"
    result = run_cli("align", "--image", str(photo), "--size", "96", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert np.asarray(Image.open(out)).shape == (96, 96, 3)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(decompression_bomb_png(30_000, 30_000))
    result = run_cli("align", "--image", str(bomb), "--size", "96", "--out", str(tmp_path / "bomb-face.png"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "too large to decode safely" in result.stderr
    assert not (tmp_path / "bomb-face.png").exists()
