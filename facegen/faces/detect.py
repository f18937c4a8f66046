"""Face detection with five landmarks: MTCNN's cascade over facegen's own networks (`facegen.models.mtcnn`).

The weights are the Caffe-trained MTCNN weights that ship as plain state dicts inside the PyPI wheel
`facenet-pytorch==2.6.0` (`facenet_pytorch/data/{pnet,rnet,onet}.pt`). That wheel pins an old torch, so it is
never installed: `hub` downloads it with `pip download --no-deps`, reads the three files out of it and checks
their sha256 before `torch.load(weights_only=True)` reads them.

The cascade (Zhang et al. 2016, section 2.1):
1. an image pyramid (scale factor 0.709, from the smallest wanted face to 12 px windows); P-Net scores every 12x12
   window at stride 2 of every level; candidates are merged by non-maximum suppression (NMS), moved by their box
   regression and made square;
2. R-Net re-scores 24x24 crops of the survivors and regresses their boxes again;
3. O-Net does the same on 48x48 crops and places the five landmarks.

Box coordinates inside the cascade are 1-based pixel positions, as in the MATLAB original the weights were trained
with; faces are reported in 0-based pixel coordinates.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn

from facegen import hub
from facegen.errors import CorruptFileError
from facegen.models.mtcnn import OutputNet, ProposalNet, RefineNet

WHEEL_PACKAGE, WHEEL_VERSION = "facenet-pytorch", "2.6.0"
# sha256 of the files as they are inside facenet_pytorch-2.6.0-py3-none-any.whl on PyPI
WEIGHT_SHA256 = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}

MIN_FACE_SIZE = 20  # pixels: the pyramid's first level maps a face this wide onto P-Net's 12x12 window
PYRAMID_FACTOR = 0.709  # about 1/sqrt(2) per level
THRESHOLDS = (0.6, 0.7, 0.7)  # face probability each stage requires
# Detection runs on a copy whose longer side is at most this; faces are reported in the photo's own pixels.
# A phone photo's pyramid would otherwise start at 3000+ px for faces that are hundreds of pixels wide.
DETECTION_MAX_SIDE = 1600
CROP_BATCH = 256


@dataclass(frozen=True)
class DetectedFace:
    """One face: its box (x1, y1, x2, y2), O-Net's probability and five (x, y) landmarks in photo pixels.

    Landmarks are, in order: the eye on the image's left, the other eye, the nose tip, the mouth corner on the
    image's left, the other mouth corner.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray  # [5, 2]

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return self.width * self.height


def mtcnn_weights_path(name: str, progress: hub.ProgressCallback | None = None) -> Path:
    """pnet.pt, rnet.pt or onet.pt in facegen's cache, read (once) out of the facenet-pytorch wheel, verified."""
    source = hub.WheelSource(WHEEL_PACKAGE, WHEEL_VERSION, f"facenet_pytorch/data/{name}.pt")
    destination = hub.cache_root() / "faces" / f"{WHEEL_PACKAGE}-{WHEEL_VERSION}" / f"{name}.pt"
    return hub.fetch_once(source, destination, WEIGHT_SHA256[name], progress)


def load_state_dict(network: nn.Module, path: Path) -> nn.Module:
    # weights_only: torch's restricted unpickler, which builds tensors and plain containers and nothing else
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise CorruptFileError(f"{path} is not a state dict of tensors. Delete it; it is fetched again on next use.")
    network.load_state_dict(state)
    return network.eval().requires_grad_(False)


class FaceDetector:
    """uint8 RGB photos [H, W, 3] -> the faces in them, largest first."""

    def __init__(self, proposal: ProposalNet, refine: RefineNet, output: OutputNet) -> None:
        self.proposal, self.refine, self.output = proposal, refine, output

    @classmethod
    def load(cls, progress: hub.ProgressCallback | None = None) -> FaceDetector:
        networks = {"pnet": ProposalNet(), "rnet": RefineNet(), "onet": OutputNet()}
        loaded = [load_state_dict(network, mtcnn_weights_path(name, progress)) for name, network in networks.items()]
        return cls(*loaded)

    @torch.inference_mode()
    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        height, width = image.shape[:2]
        shrink = max(1.0, max(height, width) / DETECTION_MAX_SIDE)
        pixels = torch.from_numpy(np.array(image, np.float32)).permute(2, 0, 1)[None]
        if shrink > 1:
            pixels = F.interpolate(pixels, size=(round(height / shrink), round(width / shrink)), mode="area")
        boxes = self._propose(pixels)
        if len(boxes):
            boxes = self._refine(pixels, boxes)
        if not len(boxes):
            return []
        boxes, landmarks = self._finish(pixels, boxes)
        faces = [
            DetectedFace(tuple(float(v) for v in (box[:4] - 1) * shrink), float(box[4]), points * shrink)
            for box, points in zip(boxes, landmarks)
        ]
        return sorted(faces, key=lambda face: face.area, reverse=True)

    # -- stage 1: P-Net over the pyramid ------------------------------------------------------------------------
    def _propose(self, pixels: torch.Tensor) -> np.ndarray:
        height, width = pixels.shape[2:]
        scale = 12 / MIN_FACE_SIZE
        candidates = []
        while min(height, width) * scale >= 12:
            level = F.interpolate(pixels, size=(int(height * scale + 1), int(width * scale + 1)), mode="area")
            regression, probability = self.proposal(normalize(level))
            windows = proposal_windows(regression[0].numpy(), probability[0].numpy(), scale, THRESHOLDS[0])
            candidates.append(windows[nms(windows, 0.5)])
            scale *= PYRAMID_FACTOR
        boxes = np.concatenate(candidates) if candidates else np.zeros((0, 9), np.float32)
        boxes = boxes[nms(boxes, 0.7)]
        # P-Net's regression is relative to the box size without the +1 of the later stages (as trained)
        size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
        boxes = np.concatenate([boxes[:, :4] + boxes[:, 5:9] * size, boxes[:, 4:5]], axis=1)
        return make_square(boxes)

    # -- stage 2: R-Net on 24x24 crops --------------------------------------------------------------------------
    def _refine(self, pixels: torch.Tensor, boxes: np.ndarray) -> np.ndarray:
        regression, probability = run_on_crops(self.refine, pixels, boxes, 24)
        keep = probability > THRESHOLDS[1]
        boxes = np.concatenate([boxes[keep, :4], probability[keep, None]], axis=1)
        regression = regression[keep]
        picked = nms(boxes, 0.7)
        return make_square(apply_regression(boxes[picked], regression[picked]))

    # -- stage 3: O-Net on 48x48 crops --------------------------------------------------------------------------
    def _finish(self, pixels: torch.Tensor, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        regression, probability, points = run_on_crops(self.output, pixels, boxes, 48)
        keep = probability > THRESHOLDS[2]
        boxes = np.concatenate([boxes[keep, :4], probability[keep, None]], axis=1)
        regression, points = regression[keep], points[keep]
        box_width = boxes[:, 2:3] - boxes[:, 0:1] + 1
        box_height = boxes[:, 3:4] - boxes[:, 1:2] + 1
        # landmarks are fractions of the box; - 1 turns the 1-based box corner into 0-based pixels
        landmarks = np.stack(
            [boxes[:, 0:1] + box_width * points[:, :5] - 1, boxes[:, 1:2] + box_height * points[:, 5:] - 1], axis=2
        )
        boxes = apply_regression(boxes, regression)
        picked = nms(boxes, 0.7, overlap="min")
        return boxes[picked], landmarks[picked]


@functools.cache
def default_detector() -> FaceDetector:
    """The MTCNN detector with the shipped weights, loaded once per process."""
    return FaceDetector.load()


def detect_faces(image: np.ndarray, detector: FaceDetector | None = None) -> list[DetectedFace]:
    """The faces in a uint8 RGB photo [H, W, 3], largest first."""
    return (detector or default_detector()).detect(image)


def marked_faces(photo: np.ndarray, faces: list[DetectedFace], chosen: int | None, max_side: int = 1024) -> np.ndarray:
    """The photo (at most `max_side` pixels on its longer side) with every face's box, landmarks and index drawn:
    the chosen face in green, the others in orange."""
    image = Image.fromarray(photo)
    scale = min(1.0, max_side / max(image.size))
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(image)
    line = max(2, round(max(image.size) / 300))
    for index, face in enumerate(faces):
        colour = (40, 220, 90) if index == chosen else (255, 150, 30)
        box = [value * scale for value in face.box]
        draw.rectangle(box, outline=colour, width=line)
        for x, y in face.landmarks * scale:
            draw.ellipse([x - line, y - line, x + line, y + line], fill=colour)
        draw.text((box[0] + line, box[1] + line), str(index), fill=colour)
    return np.asarray(image)


# -- cascade helpers ------------------------------------------------------------------------------------------------


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - 127.5) / 128


def proposal_windows(regression: np.ndarray, probability: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """P-Net outputs of one pyramid level -> [K, 9] rows (x1, y1, x2, y2, score, 4 regressions) in photo pixels.

    Output cell (row, col) saw the 12x12 window at (2 col, 2 row) of the scaled image.
    """
    rows, cols = np.nonzero(probability >= threshold)
    corner = np.stack([cols, rows], axis=1).astype(np.float32) * 2
    top_left = np.floor((corner + 1) / scale)
    bottom_right = np.floor((corner + 12) / scale)
    return np.concatenate(
        [top_left, bottom_right, probability[rows, cols, None], regression[:, rows, cols].T], axis=1
    ).astype(np.float32)


def nms(boxes: np.ndarray, threshold: float, overlap: str = "union") -> np.ndarray:
    """Indices of the boxes to keep, best score first: a box is dropped when it overlaps a kept one by more than
    `threshold` (intersection over union, or over the smaller box's area with overlap='min')."""
    if not len(boxes):
        return np.zeros(0, np.int64)
    x1, y1, x2, y2, scores = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while len(order):
        best, rest = order[0], order[1:]
        keep.append(best)
        inter_w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        inter_h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        intersection = inter_w * inter_h
        if overlap == "min":
            ratio = intersection / np.minimum(areas[best], areas[rest])
        else:
            ratio = intersection / (areas[best] + areas[rest] - intersection)
        order = rest[ratio <= threshold]
    return np.asarray(keep, np.int64)


def apply_regression(boxes: np.ndarray, regression: np.ndarray) -> np.ndarray:
    """Move each box's corners by the network's offsets, given as fractions of the box's size."""
    size = np.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1] * 2, axis=1)
    moved = boxes.copy()
    moved[:, :4] = boxes[:, :4] + regression * size
    return moved


def make_square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around the same centre (the later nets take square crops)."""
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(width, height)
    squared = boxes.copy()
    squared[:, 0] = boxes[:, 0] + (width - side) / 2
    squared[:, 1] = boxes[:, 1] + (height - side) / 2
    squared[:, 2] = squared[:, 0] + side
    squared[:, 3] = squared[:, 1] + side
    return squared


def crop_resized(pixels: torch.Tensor, box: np.ndarray, size: int) -> torch.Tensor:
    """The box's pixels (1-based, inclusive; zeros outside the photo) resized to size x size: [3, size, size]."""
    height, width = pixels.shape[2:]
    x1, y1, x2, y2 = (int(v) for v in box[:4])  # truncation, as the original cascade crops
    crop = pixels.new_zeros(3, max(1, y2 - y1 + 1), max(1, x2 - x1 + 1))
    top, left = max(y1, 1), max(x1, 1)
    bottom, right = min(y2, height), min(x2, width)
    if bottom >= top and right >= left:
        crop[:, top - y1 : bottom - y1 + 1, left - x1 : right - x1 + 1] = pixels[0, :, top - 1 : bottom, left - 1 : right]
    return F.interpolate(crop[None], size=(size, size), mode="area")[0]


def run_on_crops(network: nn.Module, pixels: torch.Tensor, boxes: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    """The network's outputs for every box's crop, batched; as numpy arrays in the network's output order."""
    outputs = []
    for start in range(0, len(boxes), CROP_BATCH):
        crops = torch.stack([crop_resized(pixels, box, size) for box in boxes[start : start + CROP_BATCH]])
        outputs.append([output.numpy() for output in network(normalize(crops))])
    return tuple(np.concatenate(parts) for parts in zip(*outputs))
