"""The offline demo sets: `demo:lfw` (shipped with scikit-image), and `demo:digiface?n=N` and its held-out twin
`demo:digiface-reference?n=N` (rendered by a catalog model).

The data layer sits below the registry, so it cannot load a catalog model itself: whoever can (the registry, when
it is imported) hands it a `ModelLoader` through `use_model_loader`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image

from facegen.data.report import DatasetError
from facegen.data.sources import RawImage, Source
from facegen.generator import Generator

LFW_FACE_COUNT = 100  # skimage's lfw_subset holds 100 faces, then 100 background patches
DIGIFACE_MODEL_ID = "digiface-dcgan64"
DIGIFACE_DEFAULT_COUNT = 1000
DIGIFACE_MAX_COUNT = 100_000
DIGIFACE_RENDER_BATCH = 64
# demo:digiface-reference starts here: `facegen metrics` draws seeds 0..n-1, so a reference from these seeds never
# holds the very images a DigiFace-trained model is measured with
DIGIFACE_REFERENCE_FIRST_SEED = 1_000_000

DEMO_DATASETS: dict[str, str] = {
    "lfw": (
        "100 face crops from Labeled Faces in the Wild (LFW, University of Massachusetts Amherst), as shipped "
        "with scikit-image (`skimage.data.lfw_subset()`), so it needs no download. Each crop is only 25x25 "
        "grayscale; it is upscaled to the training resolution and copied into three channels, so expect blurry "
        "gray faces. LFW was published for face-recognition research; the photos are of public figures taken "
        "from news sites and carry no licence for other uses. Good for checking that training runs end to end, "
        "far too small to learn faces from."
    ),
    "digiface": (
        "Synthetic 64x64 faces rendered by the pretrained `digiface-dcgan64` DCGAN of facegen's catalog from seeds "
        f"0..N-1 (`demo:digiface?n=N`, default {DIGIFACE_DEFAULT_COUNT}, rendered on first use; the only download is "
        "the model itself). The DCGAN's weights are MIT-licensed, but it was trained on Microsoft's DigiFace-1M, "
        "computer-generated faces of no real person released for non-commercial research only: treat these "
        "images as non-commercial training data. Training on a GAN's output teaches a new GAN that GAN's small, "
        "blurry faces and artefacts, not real ones: use it for quick starts and tests."
    ),
    "digiface-reference": (
        f"The same DCGAN's faces from seeds {DIGIFACE_REFERENCE_FIRST_SEED:,} onward "
        f"(`demo:digiface-reference?n=N`, default {DIGIFACE_DEFAULT_COUNT}): a colour, offline reference set for "
        "FID and KID, held out from the seeds 0..n-1 that `facegen metrics` draws. It measures how close a model "
        "comes to that DCGAN's 64x64 faces (the DCGAN itself scores near the floor), not to real photographs."
    ),
}

ModelLoader = Callable[[str], Generator]
"""Loads a catalog model by its id, e.g. `facegen.registry.load_generator`."""

_model_loader: ModelLoader | None = None


def use_model_loader(loader: ModelLoader) -> None:
    """Let the demo sets that render faces load their catalog model with `loader`."""
    global _model_loader
    _model_loader = loader


def demo_source(spec: str) -> Source:
    name, _, query = spec.partition("?")
    if name == "lfw" and not query:
        return Source("demo:lfw", {"demo": "lfw"}, LFW_FACE_COUNT, _lfw_images, upscale_small=True)
    if name in ("digiface", "digiface-reference"):
        count = _digiface_count(query, name)
        first_seed = DIGIFACE_REFERENCE_FIRST_SEED if name == "digiface-reference" else 0
        identity = {"demo": name, "model": DIGIFACE_MODEL_ID, "n": count}
        return Source(
            f"demo:{name}?n={count}", identity, count, lambda: _digiface_images(count, first_seed), upscale_small=True
        )
    raise DatasetError(
        f"Unknown demo dataset 'demo:{spec}'. Choose 'demo:lfw', 'demo:digiface' (optionally 'demo:digiface?n=500') "
        "or 'demo:digiface-reference'."
    )


def _digiface_count(query: str, name: str = "digiface") -> int:
    if not query:
        return DIGIFACE_DEFAULT_COUNT
    match = re.fullmatch(r"n=(\d+)", query)
    if not match or not 1 <= int(match.group(1)) <= DIGIFACE_MAX_COUNT:
        raise DatasetError(
            f"'demo:{name}?{query}' is not understood: write demo:{name}?n=N, N from 1 to {DIGIFACE_MAX_COUNT:,}."
        )
    return int(match.group(1))


def _lfw_images() -> Iterator[RawImage]:
    from skimage.data import lfw_subset

    faces = np.asarray(lfw_subset()[:LFW_FACE_COUNT])
    if faces.dtype != np.uint8:  # documented as uint8, but scikit-image 0.26 returns float64 in [0, 1]
        faces = np.clip(np.rint(faces * 255), 0, 255).astype(np.uint8)
    for index, face in enumerate(faces):
        yield RawImage(f"lfw_subset[{index}]", lambda face=face: Image.fromarray(face))


def _digiface_generator() -> Generator:
    if _model_loader is None:
        raise RuntimeError(
            f"demo:digiface renders with the catalog model {DIGIFACE_MODEL_ID}, but no model loader is set: import "
            "facegen.registry (it sets one), or call facegen.data.use_model_loader."
        )
    return _model_loader(DIGIFACE_MODEL_ID)


def _digiface_images(count: int, first_seed: int = 0) -> Iterator[RawImage]:
    generator = _digiface_generator()
    for start in range(first_seed, first_seed + count, DIGIFACE_RENDER_BATCH):
        seeds = list(range(start, min(start + DIGIFACE_RENDER_BATCH, first_seed + count)))
        for seed, pixels in zip(seeds, generator.sample(seeds=seeds, batch_size=DIGIFACE_RENDER_BATCH)):
            yield RawImage(f"seed {seed}", lambda pixels=pixels: Image.fromarray(pixels))
