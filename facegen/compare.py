"""Models side by side: the same seeds through several generators at one display size, and their FID/KID.

Seeds become latents with `latents_for_seeds`, which depends only on the seed and the latent size. Models with the
same z_dim therefore get the very same latent vectors, one array shared by all of them; a model with another z_dim
gets its own latents for those seeds, so its faces are not the same points in latent space and the page says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from facegen.errors import FacegenError
from facegen.generator import Generator, latents_for_seeds
from facegen.images import resize_image
from facegen.metrics import InceptionFeatures, MetricsResult, evaluate_generator

DEFAULT_MIN_DISPLAY_SIZE = 256
MAX_DISPLAY_SIZE = 1024


@dataclass(frozen=True)
class ModelRow:
    model_id: str
    resolution: int
    z_dim: int
    images: np.ndarray  # [seeds, display_size, display_size, 3] uint8


@dataclass(frozen=True)
class Comparison:
    seeds: tuple[int, ...]
    display_size: int
    rows: tuple[ModelRow, ...]

    def latent_groups(self) -> dict[int, list[str]]:
        """z_dim -> the models that were given the same latents."""
        groups: dict[int, list[str]] = {}
        for row in self.rows:
            groups.setdefault(row.z_dim, []).append(row.model_id)
        return groups

    def latent_note(self) -> str:
        """One sentence per latent size: which models saw identical latents, and which could not."""
        groups = self.latent_groups()
        if len(groups) == 1:
            ((z_dim, models),) = groups.items()
            return f"All {len(models)} models get the same latents for each seed (z_dim {z_dim})."
        notes = []
        for z_dim, models in groups.items():
            if len(models) > 1:
                notes.append(f"{', '.join(models)} share latents (z_dim {z_dim})")
            else:
                notes.append(f"{models[0]} has its own latents (z_dim {z_dim})")
        return (
            "Latent sizes differ, so only models of one size see the same latents: " + "; ".join(notes) + ". "
            "Across sizes, a seed means a different random vector."
        )


def display_size(generators: Sequence[Generator], requested: int | None = None) -> int:
    """The size every face is shown at: `requested`, else the largest model resolution but at least
    DEFAULT_MIN_DISPLAY_SIZE, so a 64 px model's faces are not postage stamps."""
    if requested is None:
        return max(DEFAULT_MIN_DISPLAY_SIZE, *(generator.resolution for generator in generators))
    if not 8 <= requested <= MAX_DISPLAY_SIZE:
        raise FacegenError(f"Display size {requested} is outside 8-{MAX_DISPLAY_SIZE} pixels. Pick a size such as 256.")
    return requested


def comparison_labels(generator: Generator) -> object:
    """Conditional models need a label: class 0 for one-hot models; attribute models take all attributes off."""
    return 0 if generator.c_dim and not generator.info.labels_are_attributes else None


def compare_models(
    generators: Sequence[Generator],
    seeds: Sequence[int],
    size: int | None = None,
    resample: str = "lanczos",
    truncation_psi: float = 1.0,
) -> Comparison:
    """Faces for `seeds` from every generator, resized to one display size; one latent array per latent size."""
    if len(generators) < 1:
        raise FacegenError("Pick at least one model (two or more to compare).")
    if not seeds:
        raise FacegenError("Give at least one seed, e.g. 0-7.")
    size = display_size(generators, size)
    latents_by_z_dim = {
        z_dim: latents_for_seeds(seeds, z_dim) for z_dim in {generator.z_dim for generator in generators}
    }
    rows = []
    for generator in generators:
        faces = generator.sample(
            latents=latents_by_z_dim[generator.z_dim],
            truncation_psi=truncation_psi,
            labels=comparison_labels(generator),
        )
        shown = np.stack([resize_image(face, (size, size), resample) for face in faces])
        rows.append(ModelRow(generator.info.model_id, generator.resolution, generator.z_dim, shown))
    return Comparison(tuple(seeds), size, tuple(rows))


# (model index, stage, done, total): stage is "reference" or "generated", as in facegen.metrics
ModelsProgress = Callable[[int, str, int, int], None]


def evaluate_models(
    generators: Sequence[Generator],
    reference: str,
    n: int,
    extractor: InceptionFeatures,
    progress: ModelsProgress | None = None,
    batch_size: int = 32,
) -> list[MetricsResult]:
    """FID and KID of each model against one reference set; its statistics are computed once per resolution
    and cached on disk by facegen.metrics, so later comparisons against it only render and measure the models."""
    results = []
    for index, generator in enumerate(generators):
        report = (
            None if progress is None else (lambda stage, done, total, index=index: progress(index, stage, done, total))
        )
        results.append(evaluate_generator(generator, reference, n, batch_size, report, extractor))
    return results


def quality_table(results: Sequence[MetricsResult]) -> list[dict[str, object]]:
    """Rows for the page's table, best FID first."""
    return [
        {
            "model": result.model_id,
            "FID": round(result.fid, 2),
            "KID": round(result.kid_mean, 4),
            "KID std": round(result.kid_std, 4),
            "generated": result.n,
            "reference images": result.reference_images,
            "resolution": result.resolution,
        }
        for result in sorted(results, key=lambda result: result.fid)
    ]
