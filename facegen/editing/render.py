"""Rendering face recipes. A `FaceRenderer` keeps the mapped ws of the faces it rendered lately, so moving a
slider (a direction amount, a mixing layer, the camera) re-runs only the synthesis network."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

import numpy as np
import torch

from facegen.editing.face import Camera, Face, MoveAlong, StoredLatent, StyleMix, check_face, face_labels
from facegen.generator import Generator, images_to_uint8


class FaceRenderer:
    """Renders faces of one model. Safe to keep per model and share (it only caches inputs, never the network)."""

    def __init__(self, generator: Generator, cached_faces: int = 16) -> None:
        self.generator = generator
        self.cached_faces = cached_faces
        self._mapped_ws: OrderedDict[Hashable, torch.Tensor] = OrderedDict()

    def render(self, face: Face) -> np.ndarray:
        """The face as an HWC uint8 image."""
        return images_to_uint8(self.render_float(face))[0]

    def render_float(self, face: Face) -> torch.Tensor:
        """The face as a float image [1, 3, H, W], unclamped, nominally in [-1, 1]."""
        check_face(face, self.generator)
        generator = self.generator
        if not generator.has_w_space:
            return generator.render(
                self.edited_z(face), face_labels(face, generator), face.truncation_psi, face.noise_mode
            )
        camera = next((edit for edit in face.edits if isinstance(edit, Camera)), None)
        transform = None if camera is None else torch.from_numpy(camera.input_transform()).float()
        return generator.synthesize(self.edited_ws(face), face.noise_mode, transform)

    def edited_ws(self, face: Face) -> torch.Tensor:
        """ws [1, num_ws, w_dim] after truncation and the face's edits (StyleGAN)."""
        labels = face_labels(face, self.generator)
        ws = self._ws(face.seed, face.latent, labels, face.truncation_psi, face.truncation_cutoff).clone()
        for edit in face.edits:
            if isinstance(edit, StyleMix):
                if edit.seed is not None:
                    donor = self._ws(edit.seed, None, labels, face.truncation_psi, face.truncation_cutoff)
                else:
                    donor = self.edited_ws(edit.face)
                layers = list(edit.layers)
                ws[:, layers] = donor[:, layers]
            elif isinstance(edit, MoveAlong):
                layers = slice(None) if edit.layers is None else list(edit.layers)
                ws[:, layers] += edit.amount * torch.from_numpy(edit.vector.numpy())
        return ws

    def edited_z(self, face: Face) -> np.ndarray:
        """z [1, z_dim] after the face's direction edits (models without a W space)."""
        z = _z(face.seed, face.latent, self.generator)
        for edit in face.edits:
            if isinstance(edit, MoveAlong):
                z = z + edit.amount * edit.vector.numpy()
        return z.astype(np.float32)

    def latent_point(self, face: Face) -> np.ndarray:
        """Where the face sits in the space directions live in: its w (mean over layers) or its z."""
        if self.generator.has_w_space:
            return self.edited_ws(face)[0].mean(dim=0).numpy()
        return self.edited_z(face)[0]

    def _ws(
        self, seed: int | None, latent: StoredLatent | None, labels: object, psi: float, cutoff: int | None
    ) -> torch.Tensor:
        key = (seed, latent, labels, psi, cutoff)
        if key in self._mapped_ws:
            self._mapped_ws.move_to_end(key)
            return self._mapped_ws[key]
        generator = self.generator
        if latent is None or latent.space == "z":
            ws = generator.map_to_w(_z(seed, latent, generator), labels, psi, cutoff)
        else:
            values = torch.from_numpy(latent.values.numpy())
            ws = values.expand(1, generator.num_ws, -1) if latent.space == "w" else values[None]
            ws = truncate(ws, generator.network.mapping.w_avg.float().cpu(), psi, cutoff)
        self._mapped_ws[key] = ws
        while len(self._mapped_ws) > self.cached_faces:
            self._mapped_ws.popitem(last=False)
        return ws


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None) -> torch.Tensor:
    """The mapping network's truncation on given ws: the first `cutoff` ws (all: None) pulled towards w_avg."""
    ws = ws.clone()
    layers = slice(None) if cutoff is None else slice(0, cutoff)
    if psi != 1:
        ws[:, layers] = w_avg.lerp(ws[:, layers], psi)
    return ws


def _z(seed: int | None, latent: StoredLatent | None, generator: Generator) -> np.ndarray:
    if latent is not None:
        return latent.values.numpy()[None]
    return generator.latents_for_seeds([seed])


def render_face(generator: Generator, face: Face) -> np.ndarray:
    """One face as an HWC uint8 image (no caching; keep a FaceRenderer for interactive use)."""
    return FaceRenderer(generator).render(face)
