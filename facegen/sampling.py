"""Rendering faces for seeds with the recipe that reproduces them: shared by the CLI and the Sample page."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facegen.generator import Generator
from facegen.images import save_images


@dataclass(frozen=True)
class SampleRequest:
    model_spec: str
    seeds: list[int]
    truncation_psi: float = 1.0
    noise_mode: str = "const"
    labels: object = None  # class index, or a label vector for every image
    truncation_cutoff: int | None = None  # psi on the first K ws only (StyleGAN); None: on all


def recipe_for(generator: Generator, request: SampleRequest) -> dict:
    """Everything needed to render the same pixels again: the pinned model spec and its weights' sha256 included.

    A network that was never saved (one in training) is named by the request's spec, without a sha256.
    """
    recipe = asdict(request)
    del recipe["model_spec"]  # as typed, e.g. run:NAME without its step: `model` names what was rendered
    recipe["labels"] = np.asarray(request.labels).tolist() if request.labels is not None else None
    identity = generator.identity
    recipe.update(
        model=str(identity.spec) if identity else request.model_spec,
        model_sha256=identity.weights_sha256 if identity else None,
        family=generator.info.family,
    )
    recipe.update(device=str(generator.device), precision=generator.precision)
    return recipe


def render(generator: Generator, request: SampleRequest, batch_size: int = 16) -> np.ndarray:
    return generator.sample(
        seeds=request.seeds,
        truncation_psi=request.truncation_psi,
        labels=request.labels,
        noise_mode=request.noise_mode,
        batch_size=batch_size,
        truncation_cutoff=request.truncation_cutoff,
    )


def render_and_save(generator: Generator, request: SampleRequest, out: str | Path, batch_size: int = 16) -> list[Path]:
    images = render(generator, request, batch_size)
    return save_images(images, out, request.seeds, recipe_for(generator, request))
