"""The one interface every model offers to the pages, the CLI and the video renderer.

A `Generator` wraps a network module (own or reimplemented NVIDIA) plus what a user needs to know about it.
The network contract is small, so any architecture plugs in:

    network.forward(z, c, truncation_psi, noise_mode) -> float NCHW image, nominally [-1, 1]

Networks with a W space (StyleGAN) also provide

    network.mapping(z, c, truncation_psi, truncation_cutoff) -> ws [N, num_ws, w_dim]
    network.synthesis(ws, noise_mode) -> float NCHW image
    network.config.num_ws, network.config.w_dim

StyleGAN3 synthesis also takes `input_transform`, a 3x3 camera transform for one call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn

from facegen.errors import FacegenError
from facegen.inference import prepare_for_inference

NoiseMode = Literal["const", "random", "none"]
NOISE_MODES: tuple[str, ...] = ("const", "random", "none")
PSI_RANGE = (0.0, 2.0)


@dataclass(frozen=True)
class ModelInfo:
    """What the app and CLI show about a model and which controls apply to it."""

    model_id: str
    family: str
    z_dim: int
    resolution: int
    c_dim: int = 0
    # One name per label dimension: class names for one-hot conditional nets, attribute names for cDCGAN.
    label_names: tuple[str, ...] = ()
    # True when labels are independent binary attributes (multi-hot), False for one-hot classes.
    labels_are_attributes: bool = False
    has_w_space: bool = False
    has_noise_inputs: bool = False
    file_sha256: str | None = None
    description: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def latents_for_seeds(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """One latent per seed, drawn exactly as NVIDIA's gen_images.py draws it, so a seed means the same face."""
    return np.concatenate([np.random.RandomState(seed).randn(1, z_dim) for seed in seeds]).astype(np.float32)


def images_to_uint8(images: torch.Tensor) -> np.ndarray:
    """NCHW float in [-1, 1] to NHWC uint8 with gen_images.py's rounding (x * 127.5 + 128, clamp, truncate)."""
    pixels = (images.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()


def check_truncation_psi(truncation_psi: float) -> float:
    low, high = PSI_RANGE
    if not low <= truncation_psi <= high:
        raise FacegenError(
            f"Truncation psi {truncation_psi} is outside [{low}, {high}]. Use 1.0 for no truncation, "
            "0.5-0.8 for more typical faces."
        )
    return float(truncation_psi)


def check_noise_mode(noise_mode: str) -> str:
    if noise_mode not in NOISE_MODES:
        raise FacegenError(f"Unknown noise mode {noise_mode!r}. Choose one of: {', '.join(NOISE_MODES)}.")
    return noise_mode


class Generator:
    """A model ready to render faces: seeds or latents in, images out, batched, without autograd."""

    def __init__(self, network: nn.Module, info: ModelInfo, device: str | torch.device = "cpu") -> None:
        self.info = info
        self.device = torch.device(device)
        self.network = prepare_for_inference(network.eval()).requires_grad_(False).to(self.device)
        # The network under its own parameter names, as `save_generator` writes it: inference preparation may
        # fold layers into others (batch norm), and a folded network no longer fits its architecture's config.
        self.exportable_network = network

    # -- facts the UI needs -------------------------------------------------------------------------------
    @property
    def z_dim(self) -> int:
        return self.info.z_dim

    @property
    def resolution(self) -> int:
        return self.info.resolution

    @property
    def c_dim(self) -> int:
        return self.info.c_dim

    @property
    def has_w_space(self) -> bool:
        return self.info.has_w_space

    @property
    def num_ws(self) -> int:
        """How many ws the synthesis network reads (one per style layer); 0 without a W space."""
        return self.network.config.num_ws if self.has_w_space else 0

    @property
    def w_dim(self) -> int:
        return self.network.config.w_dim if self.has_w_space else 0

    @property
    def has_camera(self) -> bool:
        """StyleGAN3's input transform: translate and rotate the face."""
        return self.info.family == "stylegan3"

    def to(self, device: str | torch.device) -> Generator:
        self.device = torch.device(device)
        self.network.to(self.device)
        return self

    # -- inputs -------------------------------------------------------------------------------------------
    def latents_for_seeds(self, seeds: Sequence[int]) -> np.ndarray:
        return latents_for_seeds(seeds, self.z_dim)

    def label_matrix(self, labels: object, count: int) -> torch.Tensor | None:
        """Labels as a [count, c_dim] float tensor.

        Accepts a class index (one-hot), a sequence of c_dim numbers (one vector for every image), or a
        [count, c_dim] array. Unconditional models take no labels.
        """
        if self.c_dim == 0:
            if labels is not None:
                raise FacegenError(f"Model {self.info.model_id} is unconditional; leave labels/class unset.")
            return None
        if labels is None:
            if self.info.labels_are_attributes:
                return torch.zeros(count, self.c_dim)
            raise FacegenError(
                f"Model {self.info.model_id} is conditional on {self.c_dim} classes; pass a class index "
                f"(--class K with 0 <= K < {self.c_dim})."
            )
        if isinstance(labels, (int, np.integer)):
            if not 0 <= int(labels) < self.c_dim:
                raise FacegenError(f"Class {labels} is out of range: this model has classes 0..{self.c_dim - 1}.")
            matrix = torch.zeros(count, self.c_dim)
            matrix[:, int(labels)] = 1
            return matrix
        matrix = torch.as_tensor(np.asarray(labels, dtype=np.float32))
        if matrix.ndim == 1:
            matrix = matrix.expand(count, -1)
        if matrix.shape != (count, self.c_dim):
            raise FacegenError(
                f"Labels have shape {tuple(matrix.shape)}; this model needs {self.c_dim} values per image."
            )
        return matrix.float()

    def check_truncation_cutoff(self, truncation_cutoff: int | None) -> int | None:
        """NVIDIA's truncation_cutoff: psi applies to the first K ws only (None: all of them)."""
        if truncation_cutoff is None:
            return None
        if not self.has_w_space:
            raise FacegenError(
                f"Model {self.info.model_id} has no style layers, so a truncation cutoff does not apply; "
                "leave --cutoff unset."
            )
        if not 1 <= truncation_cutoff <= self.num_ws:
            raise FacegenError(
                f"Truncation cutoff {truncation_cutoff} is outside 1..{self.num_ws}: this model has "
                f"{self.num_ws} ws (layers 0-{self.num_ws - 1})."
            )
        return int(truncation_cutoff)

    # -- rendering ----------------------------------------------------------------------------------------
    def render(
        self,
        latents: np.ndarray | torch.Tensor,
        labels: object = None,
        truncation_psi: float = 1.0,
        noise_mode: NoiseMode = "const",
        batch_size: int = 16,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        """Latents [N, z_dim] to float images [N, 3, H, W] on the CPU, computed in batches."""
        batches = self.iter_render(latents, labels, truncation_psi, noise_mode, batch_size, truncation_cutoff)
        return torch.cat(list(batches))

    def iter_render(
        self,
        latents: np.ndarray | torch.Tensor,
        labels: object = None,
        truncation_psi: float = 1.0,
        noise_mode: NoiseMode = "const",
        batch_size: int = 16,
        truncation_cutoff: int | None = None,
    ) -> Iterator[torch.Tensor]:
        """Like `render`, one batch at a time, so long renders (videos) keep memory flat."""
        truncation_psi = check_truncation_psi(truncation_psi)
        truncation_cutoff = self.check_truncation_cutoff(truncation_cutoff)
        check_noise_mode(noise_mode)
        z = torch.as_tensor(np.asarray(latents, dtype=np.float32))
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise FacegenError(f"Latents have shape {tuple(z.shape)}; this model needs [N, {self.z_dim}].")
        c = self.label_matrix(labels, len(z))
        for start in range(0, len(z), batch_size):
            with torch.inference_mode():
                batch_c = None if c is None else c[start : start + batch_size].to(self.device)
                batch_z = z[start : start + batch_size].to(self.device)
                if truncation_cutoff is None:
                    images = self.network(batch_z, batch_c, truncation_psi, noise_mode)
                else:
                    ws = self.network.mapping(batch_z, batch_c, truncation_psi, truncation_cutoff)
                    images = self.network.synthesis(ws, noise_mode)
            yield images.float().cpu()

    def sample(
        self,
        seeds: Sequence[int] | None = None,
        latents: np.ndarray | torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        labels: object = None,
        noise_mode: NoiseMode = "const",
        batch_size: int = 16,
        truncation_cutoff: int | None = None,
    ) -> np.ndarray:
        """Seeds or latents to uint8 NHWC images.

        The same seed gives the same pixels on every run. Across batch sizes the pixels are identical for
        DCGAN-family networks; StyleGAN2 uses a faster path for a single image, which can differ by one level.
        """
        if (seeds is None) == (latents is None):
            raise FacegenError("Give either seeds or latents.")
        if seeds is not None:
            latents = self.latents_for_seeds(seeds)
        images = self.render(latents, labels, truncation_psi, noise_mode, batch_size, truncation_cutoff)
        return images_to_uint8(images)

    # -- W space (StyleGAN) -------------------------------------------------------------------------------
    def _require_w_space(self) -> None:
        if not self.has_w_space:
            raise FacegenError(f"Model {self.info.model_id} has no W space; interpolate in z instead.")

    @torch.inference_mode()
    def map_to_w(
        self,
        latents: np.ndarray | torch.Tensor,
        labels: object = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        """Latents [N, z_dim] to ws [N, num_ws, w_dim] on the CPU."""
        self._require_w_space()
        truncation_psi = check_truncation_psi(truncation_psi)
        truncation_cutoff = self.check_truncation_cutoff(truncation_cutoff)
        z = torch.as_tensor(np.asarray(latents, dtype=np.float32)).to(self.device)
        c = self.label_matrix(labels, len(z))
        c = None if c is None else c.to(self.device)
        return self.network.mapping(z, c, truncation_psi, truncation_cutoff).float().cpu()

    @torch.inference_mode()
    def synthesize(
        self, ws: torch.Tensor, noise_mode: NoiseMode = "const", input_transform: torch.Tensor | None = None
    ) -> torch.Tensor:
        """ws [N, num_ws, w_dim] to float images [N, 3, H, W] on the CPU.

        `input_transform` (StyleGAN3 only): a 3x3 camera transform for this call; the network keeps its own.
        """
        self._require_w_space()
        check_noise_mode(noise_mode)
        if input_transform is None:
            return self.network.synthesis(ws.to(self.device), noise_mode).float().cpu()
        if not self.has_camera:
            raise FacegenError(
                f"Model {self.info.model_id} ({self.info.family}) has no camera; translate and rotate need StyleGAN3."
            )
        transform = input_transform.to(self.device)
        return self.network.synthesis(ws.to(self.device), noise_mode, input_transform=transform).float().cpu()
