"""The one interface every model offers to the pages, the CLI and the video renderer.

A `Generator` wraps a network module (own or reimplemented NVIDIA) plus what a user needs to know about it. The
network contract is small, so any architecture plugs in: `GeneratorNetwork`, and `StyleNetwork` for networks with
a W space. StyleGAN3 synthesis also takes `input_transform`, a 3x3 camera transform for one call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from facegen import device as devices
from facegen.errors import FacegenError
from facegen.inference import prepare_for_inference
from facegen.spec import ModelIdentity

NoiseMode = Literal["const", "random", "none"]
NOISE_MODES: tuple[str, ...] = ("const", "random", "none")
PSI_RANGE = (0.0, 2.0)


@runtime_checkable
class GeneratorNetwork(Protocol):
    """What a Generator needs of its network (an nn.Module): latents and labels in, images out."""

    def forward(
        self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float, noise_mode: NoiseMode
    ) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] or None -> float NCHW images, nominally in [-1, 1]."""
        ...


@runtime_checkable
class StyleNetwork(GeneratorNetwork, Protocol):
    """A network with a W space (StyleGAN): the walk between z and the image is open to the Generator."""

    def mapping(
        self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float, truncation_cutoff: int | None
    ) -> torch.Tensor:
        """z [N, z_dim] -> ws [N, num_ws, w_dim], truncated towards the average w."""
        ...

    def synthesis(self, ws: torch.Tensor, noise_mode: NoiseMode) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> float NCHW images."""
        ...


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
    description: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def latents_for_seeds(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """One latent per seed, drawn exactly as NVIDIA's gen_images.py draws it, so a seed means the same face."""
    return np.concatenate([np.random.RandomState(seed).randn(1, z_dim) for seed in seeds]).astype(np.float32)


def images_to_uint8(images: torch.Tensor) -> np.ndarray:
    """NCHW float in [-1, 1] to NHWC uint8 with gen_images.py's rounding (x * 127.5 + 128, clamp, truncate).

    The conversion runs where the images are, so a GPU sends a quarter of the bytes to the host.
    """
    return images_to_uint8_tensor(images).cpu().numpy()


def images_to_uint8_tensor(images: torch.Tensor) -> torch.Tensor:
    """`images_to_uint8` as an NHWC uint8 tensor on the images' device."""
    pixels = (images.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1)


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
        contract = StyleNetwork if info.has_w_space else GeneratorNetwork
        if not isinstance(network, contract):
            raise TypeError(f"{type(network).__qualname__} does not implement {contract.__name__}")
        self.info = info
        # which weights these are: set by the registry, which pinned the spec and hashed the file; None for a
        # network that was never saved (one in training, one built in a test)
        self.identity: ModelIdentity | None = None
        self.device = torch.device(device)
        self.network = prepare_for_inference(network.eval()).requires_grad_(False).to(self.device)
        # The network under its own parameter names, as `save_generator` writes it: inference preparation may
        # fold layers into others (batch norm), and a folded network no longer fits its architecture's config.
        self.exportable_network = network
        self.compute_dtype = torch.float32

    @property
    def precision(self) -> str:
        """The number format images are computed in: 'fp32', 'bf16' or 'fp16' (see facegen.device)."""
        return devices.PRECISION_NAMES[self.compute_dtype]

    def set_precision(self, precision: str) -> Generator:
        """Compute in `precision` (auto, fp32, bf16, fp16) from now on; refused where the device only emulates it.

        fp32 turns TF32 off on GPUs, so their pixels match the CPU's within float error.
        """
        dtype = devices.choose_dtype(precision, self.device, self.network)
        devices.apply_dtype(self.network, dtype)
        self.compute_dtype = dtype
        if self.device.type == "cuda" and dtype == torch.float32:
            devices.use_exact_float32()
        return self

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
        """Move to `device`; a lower precision the new device cannot compute natively falls back to float32."""
        self.device = torch.device(device)
        self.network.to(self.device)
        if self.compute_dtype != torch.float32:
            try:
                self.set_precision(self.precision)
            except FacegenError:
                self.set_precision("fp32")
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
        return torch.cat([images.cpu() for images in batches])

    def iter_render(
        self,
        latents: np.ndarray | torch.Tensor,
        labels: object = None,
        truncation_psi: float = 1.0,
        noise_mode: NoiseMode = "const",
        batch_size: int = 16,
        truncation_cutoff: int | None = None,
    ) -> Iterator[torch.Tensor]:
        """Like `render`, one batch at a time, so long renders (videos) keep memory flat.

        Batches stay on the generator's device (float32), so GPU callers convert or measure them there.
        """
        truncation_psi = check_truncation_psi(truncation_psi)
        truncation_cutoff = self.check_truncation_cutoff(truncation_cutoff)
        check_noise_mode(noise_mode)
        z = torch.as_tensor(np.asarray(latents, dtype=np.float32))
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise FacegenError(f"Latents have shape {tuple(z.shape)}; this model needs [N, {self.z_dim}].")
        c = self.label_matrix(labels, len(z))
        for start in range(0, len(z), batch_size):
            with torch.inference_mode(), devices.autocast(self.device, self.network, self.compute_dtype):
                batch_c = None if c is None else c[start : start + batch_size].to(self.device)
                batch_z = z[start : start + batch_size].to(self.device)
                if truncation_cutoff is None:
                    images = self.network(batch_z, batch_c, truncation_psi, noise_mode)
                else:
                    ws = self.network.mapping(batch_z, batch_c, truncation_psi, truncation_cutoff)
                    images = self.network.synthesis(ws, noise_mode)
            yield images.float()

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
        batches = self.iter_render(latents, labels, truncation_psi, noise_mode, batch_size, truncation_cutoff)
        return np.concatenate([images_to_uint8(images) for images in batches])

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

    def synthesize(
        self, ws: torch.Tensor, noise_mode: NoiseMode = "const", input_transform: torch.Tensor | None = None
    ) -> torch.Tensor:
        """ws [N, num_ws, w_dim] to float images [N, 3, H, W] on the CPU.

        `input_transform` (StyleGAN3 only): a 3x3 camera transform for this call; the network keeps its own.
        """
        return self._synthesize_on_device(ws, noise_mode, input_transform).cpu()

    def synthesize_uint8(
        self, ws: torch.Tensor, noise_mode: NoiseMode = "const", input_transform: torch.Tensor | None = None
    ) -> np.ndarray:
        """ws [N, num_ws, w_dim] to uint8 NHWC images, converted on the generator's device."""
        return images_to_uint8(self._synthesize_on_device(ws, noise_mode, input_transform))

    @torch.inference_mode()
    def _synthesize_on_device(
        self, ws: torch.Tensor, noise_mode: NoiseMode, input_transform: torch.Tensor | None
    ) -> torch.Tensor:
        self._require_w_space()
        check_noise_mode(noise_mode)
        camera = {}
        if input_transform is not None:
            if not self.has_camera:
                raise FacegenError(
                    f"Model {self.info.model_id} ({self.info.family}) has no camera; translate and rotate need "
                    "StyleGAN3."
                )
            camera = {"input_transform": input_transform.to(self.device)}
        with devices.autocast(self.device, self.network, self.compute_dtype):
            return self.network.synthesis(ws.to(self.device), noise_mode, **camera).float()
