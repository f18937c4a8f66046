"""The perceptual distance projection minimises: LPIPS over VGG16, as NVIDIA's projector computes it.

The network is NVIDIA's TorchScript file `vgg16.pt` (catalog entry `[networks.lpips-vgg16]`), or any TorchScript
module with its calling convention, which `projector.py` of stylegan2-ada-pytorch uses:

    features = vgg16(images, resize_images=False, return_lpips=True)

images: float [N, 3, H, W], RGB in [0, 255]; features [N, F] whose squared Euclidean distance is the LPIPS distance.
Images larger than 256 px are area-averaged to 256x256 first, as NVIDIA does (VGG16 was trained on 224 px images).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from facegen import hub, registry
from facegen.device import check_precision, has_native_bfloat16
from facegen.errors import FacegenError, FetchError

PERCEPTUAL_NETWORK = "lpips-vgg16"
# a perceptual network file to use instead of NVIDIA's: for machines that cannot fetch it, and for the app's tests
PERCEPTUAL_ENVIRONMENT = "FACEGEN_PERCEPTUAL"
MAX_INPUT_SIZE = 256
PROBE_SIZE = 32  # a tiny image checks the calling convention when the network is loaded
# The perceptual network only steers the optimisation (the face is rendered at the generator's own precision, so
# its recipe renders the same pixels anywhere), so it runs in bfloat16 wherever that is native.
DEFAULT_PERCEPTUAL_PRECISION = "auto"
PERCEPTUAL_PRECISIONS = ("auto", "fp32", "bf16")


class PerceptualDistance:
    """Features of [0, 255] images for LPIPS distances, from a network prepared for optimisation.

    The preparation is the place of this module's speed choices: the network's parameters never need gradients
    (only the image does), so they are frozen. In float32 its weights and inputs are channels_last, the layout
    oneDNN's CPU convolutions work in. With precision bf16 or auto, where the hardware computes bfloat16 natively,
    the network runs in bfloat16: oneDNN then takes its fast path for every convolution (in float32, torch leaves
    the small late-stage convolutions of a single image to a slower generic kernel), and there the default layout
    is the faster one; bench/project.py measures both. No float16: LPIPS' unit-normalisation underflows in it.
    """

    def __init__(
        self,
        network: torch.jit.ScriptModule,
        name: str,
        sha256: str,
        device: str | torch.device = "cpu",
        precision: str = DEFAULT_PERCEPTUAL_PRECISION,
    ):
        self.device = torch.device(device)
        if precision not in PERCEPTUAL_PRECISIONS:
            raise FacegenError(f"Unknown perceptual precision {precision!r}: use one of {', '.join(PERCEPTUAL_PRECISIONS)}.")
        check_precision(precision, self.device)
        native_bfloat16 = precision in ("bf16", "auto") and has_native_bfloat16(self.device)
        self.dtype = torch.bfloat16 if native_bfloat16 else torch.float32
        for parameter in network.parameters():
            parameter.requires_grad_(False)
        self.memory_format = torch.channels_last if self.dtype == torch.float32 else torch.contiguous_format
        self.network = network.eval().to(self.device, self.dtype, memory_format=self.memory_format)
        self.name = name
        self.sha256 = sha256
        self._check_calling_convention()

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        device: str | torch.device = "cpu",
        progress: hub.ProgressCallback | None = None,
        precision: str = DEFAULT_PERCEPTUAL_PRECISION,
    ) -> PerceptualDistance:
        """The network at `path` (any TorchScript file with NVIDIA's calling convention), else the file that the
        environment variable FACEGEN_PERCEPTUAL names, else NVIDIA's vgg16.pt from the cache, fetched and verified
        on first use; `precision` is one of PERCEPTUAL_PRECISIONS."""
        given_by = "the path given to --perceptual"
        if path is None and os.environ.get(PERCEPTUAL_ENVIRONMENT):
            path, given_by = os.environ[PERCEPTUAL_ENVIRONMENT], PERCEPTUAL_ENVIRONMENT
        if path is None:
            path = default_network_path(progress)
            name = PERCEPTUAL_NETWORK
        else:
            path = Path(path).expanduser()
            if not path.is_file():
                raise FacegenError(f"Perceptual network {path} does not exist. Check {given_by}.")
            name = path.name
        sha256 = hub.sha256_file(path)
        # torch.jit.load runs no Python from the file (TorchScript compiles to torch's own IR, tensors come through
        # torch's restricted unpickler). torch deprecates TorchScript, but NVIDIA's file has no other loader.
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=FutureWarning)
                network = torch.jit.load(str(path), map_location="cpu")
        except (RuntimeError, ValueError, OSError) as error:
            raise FacegenError(
                f"{path} is not a TorchScript file ({str(error).splitlines()[0][:120]}). Give NVIDIA's vgg16.pt or "
                "another network saved with torch.jit.save."
            ) from None
        return cls(network, name, sha256, device, precision)

    def _check_calling_convention(self) -> None:
        probe = torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE, device=self.device, dtype=self.dtype)
        try:
            with torch.inference_mode():
                features = self.network(probe, resize_images=False, return_lpips=True)
        except Exception as error:  # TorchScript raises its own error types for a wrong signature
            raise FacegenError(
                f"Perceptual network {self.name} cannot be called as vgg16(images, resize_images=False, "
                f"return_lpips=True): {str(error).strip().splitlines()[-1][:160]}"
            ) from None
        if not isinstance(features, torch.Tensor) or features.ndim != 2 or len(features) != 1:
            raise FacegenError(
                f"Perceptual network {self.name} returned {type(features).__name__} for one image; a perceptual "
                "network returns features [N, F]."
            )

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """float [N, 3, H, W] in [0, 255] -> float32 features [N, F]; differentiable with respect to the images.

        Images of 256 px or less go in as they are (NVIDIA's projector resizes only larger ones)."""
        if images.shape[2] > MAX_INPUT_SIZE:
            images = F.interpolate(images, size=(MAX_INPUT_SIZE, MAX_INPUT_SIZE), mode="area")
        images = images.to(self.dtype, memory_format=self.memory_format)
        return self.network(images, resize_images=False, return_lpips=True).float()


def default_network_path(progress: hub.ProgressCallback | None = None) -> Path:
    """NVIDIA's vgg16.pt in the cache; a FetchError that says how to get it when it cannot be downloaded."""
    try:
        return registry.fetch_network(PERCEPTUAL_NETWORK, progress)
    except FetchError as error:
        entry = registry.network_entry(PERCEPTUAL_NETWORK)
        url = hub.describe_source(entry.sources[0]) if entry.sources else "NVIDIA's stylegan2-ada-pytorch release"
        raise FetchError(
            f"The perceptual network {entry.filename} (LPIPS VGG16) is not in the cache and could not be downloaded "
            f"({error}). Download {url} where it is reachable and pass its path with --perceptual PATH or the "
            f"environment variable {PERCEPTUAL_ENVIRONMENT} (or place it at {registry.network_path(entry)})."
        ) from None
