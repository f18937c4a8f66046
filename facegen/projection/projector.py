"""Projection: find the latent whose image is closest to a target image, step by step.

StyleGAN (spaces 'w' and 'w+') follows NVIDIA's projector (stylegan2-ada-pytorch `projector.py`): start from the
average w (of 10,000 mapped z drawn with seed 123) with its spread w_std; Adam (betas 0.9, 0.999) at learning rate
0.1, ramped up over the first 5 % of the steps and down (cosine) over the last 25 %; Gaussian noise added to w,
w_std * 0.05 at first and falling quadratically to zero at 75 % of the steps; the loss is the LPIPS distance to the
target plus 1e5 times a regulariser that keeps the noise maps free of spatial correlation at every scale. The noise
maps are optimised too, on a private copy of the synthesis network, and are re-normalised after every step. As in
NVIDIA's projector, the result is the final w alone, rendered with the model's own constant noise. 'w' optimises one
w for all layers; 'w+' one per layer.

Networks without a W space (DCGAN family, ProGAN) optimise z the same way, starting at the origin, with a Gaussian
prior term `z_prior_weight * mean(z^2)` that keeps z where the network was trained, and the same decaying noise
(z's spread is 1).

Speed: the target's features are computed once; the perceptual network is prepared for optimisation (see
`perceptual.py`); StyleGAN's modulated convolutions scale activations rather than weights under autograd, so no
convolution needs a weight gradient; previews and video frames reuse the step's own image instead of rendering
another. `bench/project.py` compares this loop with a plain transcription of NVIDIA's.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from facegen import device as devices
from facegen.editing import Face, FaceRenderer
from facegen.errors import FacegenError
from facegen.generator import Generator, images_to_uint8
from facegen.projection.perceptual import PerceptualDistance

SPACES = ("w", "w+", "z")
W_AVERAGE_SEED = 123  # NVIDIA's projector draws its w statistics with this seed
W_AVERAGE_BATCH = 1000
MAX_STEPS = 100_000


@dataclass(frozen=True)
class ProjectionSettings:
    steps: int = 1000
    space: str | None = None  # 'w', 'w+' or 'z'; None: 'w' for models with a W space, else 'z'
    seed: int = 0  # initial noise maps and the noise added to the latent
    initial_learning_rate: float = 0.1
    initial_noise_factor: float = 0.05
    lr_rampdown_length: float = 0.25
    lr_rampup_length: float = 0.05
    noise_ramp_length: float = 0.75
    regularize_noise_weight: float = 1e5
    w_average_samples: int = 10_000
    # NVIDIA's recipe optimises the noise maps alongside w (then renders with the model's own); False keeps the
    # model's own maps throughout, which suits targets the model rendered itself
    optimize_noise: bool = True
    z_prior_weight: float = 1e-3
    # mean squared pixel difference (images in [-1, 1]) added to the perceptual distance; NVIDIA's recipe has none
    pixel_weight: float = 0.0
    preview_every: int = 10  # steps between previews handed to the callback

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= MAX_STEPS:
            raise FacegenError(f"Steps {self.steps} is outside 1..{MAX_STEPS:,}; NVIDIA's projector uses 1000.")
        if self.space is not None and self.space not in SPACES:
            raise FacegenError(f"Unknown latent space {self.space!r}. Choose one of: {', '.join(SPACES)}.")
        if self.preview_every < 1:
            raise FacegenError("preview_every must be 1 or more steps.")

    def space_for(self, generator: Generator) -> str:
        space = self.space or ("w" if generator.has_w_space else "z")
        if space != "z" and not generator.has_w_space:
            raise FacegenError(
                f"Model {generator.info.model_id} ({generator.info.family}) has no W space; project with --space z."
            )
        return space


@dataclass(frozen=True)
class ProjectionUpdate:
    """What a progress callback receives after every step."""

    step: int  # steps done
    steps: int
    distance: float | None  # the perceptual distance, on preview steps
    preview: np.ndarray | None  # uint8 [R, R, 3]: the step's image, on preview steps


ProjectionCallback = Callable[[ProjectionUpdate], None]
# uint8 [R, R, 3] of every step, for the progress video
FrameSink = Callable[[np.ndarray], None]


@dataclass(frozen=True)
class ProjectionResult:
    space: str
    face: Face  # the projected latent as a face recipe: z, w or w+, untruncated, the model's constant noise
    w: np.ndarray | None  # float32 [1, num_ws, w_dim] for models with a W space (from z when space is 'z')
    image: np.ndarray  # uint8 [R, R, 3]: the face as FaceRenderer renders it
    steps_done: int
    steps: int
    distance: float

    @property
    def stopped_early(self) -> bool:
        return self.steps_done < self.steps


def target_tensor(target: np.ndarray, generator: Generator) -> torch.Tensor:
    """uint8 [R, R, 3] at the model's resolution -> float [1, 3, R, R] in [0, 255] on the generator's device."""
    resolution = generator.resolution
    if target.shape != (resolution, resolution, 3) or target.dtype != np.uint8:
        raise FacegenError(
            f"The target image is {target.shape} {target.dtype}; projection needs uint8 [{resolution}, {resolution}, 3] "
            "(align the photo at the model's resolution)."
        )
    return torch.from_numpy(np.array(target, np.float32)).permute(2, 0, 1)[None].to(generator.device)


def w_statistics(generator: Generator, samples: int) -> tuple[torch.Tensor, float]:
    """(w_avg [1, 1, w_dim], w_std) of `samples` mapped latents, drawn as NVIDIA's projector draws them."""
    z = np.random.RandomState(W_AVERAGE_SEED).randn(samples, generator.z_dim).astype(np.float32)
    labels = generator.label_matrix(None, samples)
    ws = torch.cat(
        [
            generator.map_to_w(z[start : start + W_AVERAGE_BATCH], None if labels is None else labels[start : start + W_AVERAGE_BATCH])[:, :1]
            for start in range(0, samples, W_AVERAGE_BATCH)
        ]
    ).double()
    w_avg = ws.mean(dim=0, keepdim=True)
    w_std = float(((ws - w_avg).square().sum() / samples).sqrt())
    return w_avg.float(), w_std


def noise_regularization(noise_maps: list[torch.Tensor]) -> torch.Tensor:
    """Sum over maps and scales (down to 8x8, by 2x2 averaging) of the squared mean products of each map with itself
    shifted by one pixel across and down: zero for spatially uncorrelated noise."""
    total = torch.zeros((), device=noise_maps[0].device)
    for noise in noise_maps:
        noise = noise[None, None]
        while True:
            total = total + (noise * torch.roll(noise, shifts=1, dims=3)).mean().square()
            total = total + (noise * torch.roll(noise, shifts=1, dims=2)).mean().square()
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return total


class Projection:
    """One projection, run a step at a time (`step()`), so a caller can report, preview and stop between steps."""

    def __init__(
        self,
        generator: Generator,
        target: np.ndarray,
        perceptual: PerceptualDistance,
        settings: ProjectionSettings = ProjectionSettings(),
    ) -> None:
        self.generator = generator
        self.settings = settings
        self.space = settings.space_for(generator)
        self.perceptual = perceptual
        self.steps_done = 0
        self._distance = torch.tensor(math.inf)
        device = generator.device
        self.random = torch.Generator().manual_seed(settings.seed)
        self.target = target_tensor(target, generator)
        self.target_pixels = self.target / 127.5 - 1
        with torch.no_grad():
            self.target_features = perceptual(self.target)
        self.labels = generator.label_matrix(None, 1)
        if self.labels is not None:
            self.labels = self.labels.to(device)
        self.noise_maps: list[torch.Tensor] = []
        if self.space == "z":
            self.latent_std = 1.0
            start = torch.zeros(1, generator.z_dim)
            self.z_network, self.z_dtype = self._z_network(perceptual.dtype)
        else:
            w_avg, self.latent_std = w_statistics(generator, settings.w_average_samples)
            self.num_ws = generator.num_ws
            start = w_avg.repeat(1, self.num_ws, 1) if self.space == "w+" else w_avg
            if settings.optimize_noise:
                self.synthesis = self._synthesis_with_free_noise()
            else:
                self.synthesis = generator.network.synthesis
        self.latent = start.to(device).requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.latent, *self.noise_maps], betas=(0.9, 0.999), lr=settings.initial_learning_rate)
        self.last_image: torch.Tensor | None = None

    def _synthesis_with_free_noise(self) -> torch.nn.Module:
        """A private copy of the synthesis network whose constant noise maps are fresh Gaussian noise, optimisable
        (the shared generator, maybe rendering for someone else meanwhile, is never touched)."""
        synthesis = copy.deepcopy(self.generator.network.synthesis)
        for name, buffer in list(synthesis.named_buffers()):
            if "noise_const" not in name:
                continue
            owner_name, _, buffer_name = name.rpartition(".")
            owner = synthesis.get_submodule(owner_name)
            noise = torch.randn(buffer.shape, generator=self.random).to(buffer.device).requires_grad_(True)
            setattr(owner, buffer_name, noise)
            self.noise_maps.append(noise)
        return synthesis

    def _z_network(self, perceptual_dtype: torch.dtype) -> tuple[torch.nn.Module, torch.dtype]:
        """The network that renders the steps of a z projection, and its precision. The steps only steer the
        optimisation (the result is rendered at the generator's own precision), so where the perceptual network
        runs in bfloat16 a private bfloat16 copy renders them too: its weights are then not cast on every step."""
        generator = self.generator
        if perceptual_dtype == torch.float32 or generator.compute_dtype != torch.float32:
            return generator.network, generator.compute_dtype
        return copy.deepcopy(generator.network).to(perceptual_dtype), perceptual_dtype

    @property
    def finished(self) -> bool:
        return self.steps_done >= self.settings.steps

    def _schedule(self) -> tuple[float, float]:
        """(learning rate, latent noise scale) for the current step."""
        settings, progress = self.settings, self.steps_done / self.settings.steps
        noise_scale = self.latent_std * settings.initial_noise_factor * max(0.0, 1.0 - progress / settings.noise_ramp_length) ** 2
        ramp = min(1.0, (1.0 - progress) / settings.lr_rampdown_length)
        ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
        ramp *= min(1.0, progress / settings.lr_rampup_length)
        return settings.initial_learning_rate * ramp, noise_scale

    def _render(self, latent: torch.Tensor) -> torch.Tensor:
        if self.space == "z":
            with devices.autocast(self.generator.device, self.z_network, self.z_dtype):
                return self.z_network(latent, self.labels, 1.0, "const")
        ws = latent if self.space == "w+" else latent.expand(-1, self.num_ws, -1)
        generator = self.generator
        with devices.autocast(generator.device, generator.network, generator.compute_dtype):
            return self.synthesis(ws, "const")

    @property
    def distance(self) -> float:
        """The perceptual distance of the last step's image (reading it waits for an accelerator to finish)."""
        return float(self._distance)

    def step(self) -> None:
        """One optimisation step."""
        learning_rate, noise_scale = self._schedule()
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        latent_noise = torch.randn(self.latent.shape, generator=self.random).to(self.latent.device) * noise_scale
        with torch.enable_grad():
            images = self._render(self.latent + latent_noise).float()
            # features minus target, not the reverse: the backward pass then needs no negation of the features
            distance = (self.perceptual((images + 1) * 127.5) - self.target_features).square().sum()
            loss = distance
            if self.noise_maps:
                loss = loss + noise_regularization(self.noise_maps) * self.settings.regularize_noise_weight
            if self.space == "z":
                loss = loss + self.latent.square().mean() * self.settings.z_prior_weight
            if self.settings.pixel_weight:
                loss = loss + (images - self.target_pixels).square().mean() * self.settings.pixel_weight
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            for noise in self.noise_maps:
                noise -= noise.mean()
                noise *= noise.square().mean().rsqrt()
        self.steps_done += 1
        self.last_image = images.detach()
        self._distance = distance.detach()

    def current_image(self) -> np.ndarray:
        """uint8 [R, R, 3] of the last step's image (the latent with its noise, as optimised)."""
        if self.last_image is None:
            raise FacegenError("No step has run yet.")
        return images_to_uint8(self.last_image)[0]

    def result(self) -> ProjectionResult:
        """The latent reached so far as a face, rendered as every later reader of the face renders it."""
        latent = self.latent.detach().cpu().float()
        if self.space == "z":
            face = Face.from_latent(self.generator, "z", latent[0].numpy())
            w = self.generator.map_to_w(latent).numpy() if self.generator.has_w_space else None
        else:
            # latent: w [1, 1, w_dim] or w+ [1, num_ws, w_dim]
            face = Face.from_latent(self.generator, self.space, latent[0, 0] if self.space == "w" else latent[0])
            w = (latent if self.space == "w+" else latent.repeat(1, self.num_ws, 1)).numpy()
        return ProjectionResult(
            space=self.space,
            face=face,
            w=w,
            image=FaceRenderer(self.generator).render(face),
            steps_done=self.steps_done,
            steps=self.settings.steps,
            distance=self.distance,
        )


def project(
    generator: Generator,
    target: np.ndarray,
    perceptual: PerceptualDistance,
    settings: ProjectionSettings = ProjectionSettings(),
    callback: ProjectionCallback | None = None,
    stop: threading.Event | None = None,
    frames: FrameSink | None = None,
) -> ProjectionResult:
    """Project a uint8 [R, R, 3] target into the generator's latent space.

    `callback` gets a `ProjectionUpdate` after every step (the image and distance every `preview_every` steps and
    at the end); `frames` gets every step's image; setting `stop` ends the optimisation after the current step and
    returns the latent reached so far.
    """
    projection = Projection(generator, target, perceptual, settings)
    while not projection.finished and not (stop is not None and stop.is_set()):
        projection.step()
        done = projection.steps_done
        is_preview = callback is not None and (done % settings.preview_every == 0 or projection.finished)
        image = projection.current_image() if frames is not None or is_preview else None
        if frames is not None:
            frames(image)
        if callback is not None:
            # reading the distance waits for an accelerator, so only previews carry it
            distance = projection.distance if is_preview else None
            callback(ProjectionUpdate(done, settings.steps, distance, image if is_preview else None))
    return projection.result()
