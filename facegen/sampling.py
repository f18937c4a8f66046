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


def recipe_for(generator: Generator, request: SampleRequest) -> dict:
    """Everything needed to render the same pixels again."""
    recipe = asdict(request)
    recipe["labels"] = np.asarray(request.labels).tolist() if request.labels is not None else None
    recipe.update(model=generator.info.model_id, file_sha256=generator.info.file_sha256, family=generator.info.family)
    recipe.update(device=str(generator.device), precision=generator.precision)
    return recipe


def render(generator: Generator, request: SampleRequest, batch_size: int = 16) -> np.ndarray:
    return generator.sample(
        seeds=request.seeds,
        truncation_psi=request.truncation_psi,
        labels=request.labels,
        noise_mode=request.noise_mode,
        batch_size=batch_size,
    )


def render_and_save(generator: Generator, request: SampleRequest, out: str | Path, batch_size: int = 16) -> list[Path]:
    images = render(generator, request, batch_size)
    return save_images(images, out, request.seeds, recipe_for(generator, request))
