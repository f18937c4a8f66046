"""Convert once: a catalog model in a foreign format is read from its pickle the first time only; later loads use
facegen's own safetensors + JSON in the cache, verified, and invalidated when the source file changes."""

from __future__ import annotations

import contextlib
import pickle
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from facegen import formats, hub, registry
from facegen.cli import main as cli_main
from facegen.formats import facebook_pgan, nvidia_pickle, tf_progan, torch_checkpoint
from facegen.formats.converted import converted_path
from tests.fake_host import FakeHost, use_catalog
from tests.formats import progan_fixtures as fx
from tests.test_registry import write_tiny_dcgan

SEEDS = [0, 1, 2]
NVIDIA_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "nvidia"
OPENED: list[str] = []
RECORDING_OPENS = [False]


def _record_opens(event: str, args: tuple) -> None:
    if event == "open" and RECORDING_OPENS[0] and isinstance(args[0], str):
        OPENED.append(args[0])


sys.addaudithook(_record_opens)


def write_progan(path, seed=0):
    return fx.write_tf_progan(path, fx.tf_progan_variables(seed=seed))


def write_pgan(path, seed=0):
    return fx.write_facebook_pgan(path, fx.facebook_pgan_generator(seed=seed))


def write_dcgan(path, seed=0):
    torch.manual_seed(seed)
    write_tiny_dcgan(path)
    return path


def nvidia_fixture(name: str):
    """A writer that copies the in-repo NVIDIA fixture `name` (one network each: `seed` has nothing to choose)."""
    return lambda path, seed=0: Path(shutil.copyfile(NVIDIA_FIXTURES / name, path))


# case -> (catalog format, file writer(path, seed), file name)
FORMATS = {
    "stylegan2-pickle": ("nvidia-pickle", nvidia_fixture("sg2.pkl"), "sg2.pkl"),
    "stylegan3-pickle": ("nvidia-pickle", nvidia_fixture("sg3t.pkl"), "sg3t.pkl"),
    "tf-progan": ("tf-progan", write_progan, "progan.pkl"),
    "facebook-pgan": ("facebook-pgan", write_pgan, "pgan.pth"),
    "torch-dcgan": ("torch-dcgan", write_dcgan, "tiny.pt"),
}
# case -> what its catalog entry records about the network (a file placed by hand must match it)
NETWORK_FACTS = {
    "stylegan2-pickle": {"family": "stylegan2", "resolution": 64, "z_dim": 128},
    "stylegan3-pickle": {"family": "stylegan3", "resolution": 32, "z_dim": 64},
    "tf-progan": {"family": "progan", "resolution": 16, "z_dim": 8},
    "facebook-pgan": {"family": "progan", "resolution": 16, "z_dim": 8},
    "torch-dcgan": {"family": "dcgan", "resolution": 32, "z_dim": 10},
}


@pytest.fixture
def host():
    host = FakeHost()
    yield host
    host.close()


def serve_model(host, tmp_path, monkeypatch, case: str, seed: int = 0):
    """A catalog model `served` as in FORMATS[case], on the fake host; returns its catalog entry."""
    format_name, write, filename = FORMATS[case]
    source = write(tmp_path / filename, seed)
    host.serve(filename, source.read_bytes())
    use_catalog(
        tmp_path,
        monkeypatch,
        {
            "served": {
                "title": "Served",
                "format": format_name,
                "filename": filename,
                "sources": [{"kind": "url", "url": host.url(filename)}],
                **NETWORK_FACTS[case],
            }
        },
    )
    return registry.catalog_entry("served")


@contextlib.contextmanager
def reading_no_pickles() -> Iterator[list[str]]:
    """Inside, every way facegen reads a pickle or a foreign weights file fails the test; yields the opened paths."""

    def refuse(*args, **kwargs):
        pytest.fail("a pickle or foreign weights file was read")

    with pytest.MonkeyPatch.context() as patch:
        for owner, name in [
            (pickle, "load"), (pickle, "loads"), (torch, "load"), (nvidia_pickle.RestrictedUnpickler, "load"),
            (nvidia_pickle, "read_network_pickle"), (tf_progan, "read_tf_networks"),
            (facebook_pgan, "read_checkpoint"), (torch_checkpoint, "read_state_dict"), (formats.WeightsFormat, "load"),
        ]:  # fmt: skip
            patch.setattr(owner, name, refuse)
        OPENED.clear()
        RECORDING_OPENS[0] = True
        try:
            yield OPENED
        finally:
            RECORDING_OPENS[0] = False


@pytest.mark.parametrize("case", list(FORMATS))
def test_second_load_reads_no_pickle_and_draws_the_same_faces(host, tmp_path, monkeypatch, case):
    entry = serve_model(host, tmp_path, monkeypatch, case)
    first = registry.load_generator("served")
    converted = converted_path(registry.cached_path(entry))
    assert converted.exists() and converted.with_suffix(".json").exists()
    assert hub.recorded_sha256(converted) == hub.sha256_file(converted)
    faces = first.sample(seeds=SEEDS)

    with reading_no_pickles() as opened:
        second = registry.load_generator("served")
    assert str(registry.cached_path(entry)) not in opened, "the source file is not even opened"
    assert str(converted) in opened
    assert np.array_equal(second.sample(seeds=SEEDS), faces)
    assert second.identity == first.identity
    assert second.identity.weights_sha256 == hub.recorded_sha256(registry.cached_path(entry))
    assert (second.info.family, second.resolution, second.z_dim) == (first.info.family, first.resolution, first.z_dim)


def test_damaged_conversion_is_made_again(host, tmp_path, monkeypatch):
    entry = serve_model(host, tmp_path, monkeypatch, "tf-progan")
    faces = registry.load_generator("served").sample(seeds=SEEDS)
    converted = converted_path(registry.cached_path(entry))
    damaged = bytearray(converted.read_bytes())
    damaged[-5] ^= 0xFF
    converted.write_bytes(bytes(damaged))
    assert np.array_equal(registry.load_generator("served").sample(seeds=SEEDS), faces)
    assert hub.sha256_file(converted) == hub.recorded_sha256(converted)


def test_replaced_source_invalidates_the_conversion(host, tmp_path, monkeypatch):
    serve_model(host, tmp_path, monkeypatch, "tf-progan")
    old_faces = registry.load_generator("served").sample(seeds=SEEDS)
    other = write_progan(tmp_path / "other-progan.pkl", seed=9)
    registry.install_from_file("served", other)
    new = registry.load_generator("served")
    assert new.identity.weights_sha256 == hub.sha256_file(other)
    assert not np.array_equal(new.sample(seeds=SEEDS), old_faces)
    assert np.array_equal(new.sample(seeds=SEEDS), tf_progan.load_tf_progan_generator(other).sample(seeds=SEEDS))


def test_truncated_source_is_verified_and_fetched_again_despite_a_conversion(host, tmp_path, monkeypatch):
    entry = serve_model(host, tmp_path, monkeypatch, "tf-progan")
    faces = registry.load_generator("served").sample(seeds=SEEDS)
    source = registry.cached_path(entry)
    good_sha256 = hub.recorded_sha256(source)
    source.write_bytes(source.read_bytes()[:1000])
    assert np.array_equal(registry.load_generator("served").sample(seeds=SEEDS), faces)
    assert hub.sha256_file(source) == good_sha256


def test_file_placed_by_hand_samples_offline(tmp_path, monkeypatch, capsys):
    """`fetch ID --from PATH` verifies and installs; the model then samples with every host unreachable."""
    by_hand = write_progan(tmp_path / "downloaded-in-a-browser.pkl")
    use_catalog(
        tmp_path,
        monkeypatch,
        {
            "progan-tiny": {
                "title": "ProGAN tiny",
                "family": "progan",
                "format": "tf-progan",
                "resolution": 16,
                "z_dim": 8,
                "filename": "karras2018iclr-celebahq-tiny.pkl",
                "sources": [
                    {"kind": "url", "url": "http://127.0.0.1:9/condensed.pkl", "size_bytes": 1},
                    {"kind": "url", "url": "http://127.0.0.1:9/full.pkl", "size_bytes": by_hand.stat().st_size},
                ],
            }
        },
    )
    monkeypatch.setattr(hub, "DOWNLOAD_RETRIES", 0)
    assert cli_main(["fetch", "progan-tiny", "--from", str(by_hand)]) == 0
    assert registry.model_status(registry.catalog_entry("progan-tiny")).state == "cached"
    out = tmp_path / "faces.png"
    assert cli_main(["sample", "--model", "progan-tiny", "--seeds", "0-3", "--out", str(out)]) == 0
    assert out.stat().st_size > 0
    assert cli_main(["sample", "--model", "progan-tiny", "--seeds", "0-3", "--out", str(tmp_path / "again.png")]) == 0
    assert (tmp_path / "again.png").read_bytes() == out.read_bytes()


@dataclass(frozen=True)
class FilteredConfig:
    channels: int = 3


class FilteredNetwork(nn.Module):
    """A generator-shaped module with a constant that is not saved (a non-persistent buffer, like a fixed filter)."""

    def __init__(self, config: FilteredConfig) -> None:
        super().__init__()
        self.config = config
        self.scale = nn.Parameter(torch.randn(config.channels))
        self.register_buffer("kernel", torch.arange(config.channels, dtype=torch.float32) + 1, persistent=False)

    def forward(self, z, c=None, truncation_psi=1.0, noise_mode="const"):
        return (z[:, : self.config.channels] * self.scale * self.kernel)[:, :, None, None]


def test_own_checkpoint_keeps_constants_the_file_does_not_hold(tmp_path, request):
    from facegen import models
    from facegen.formats import checkpoint

    models.register(models.Architecture("filtered", "a test network", FilteredConfig, FilteredNetwork))
    request.addfinalizer(lambda: models.unregister("filtered"))
    network = FilteredNetwork(FilteredConfig())
    path = checkpoint.save_generator(tmp_path / "filtered.safetensors", network, "filtered", network.config)
    loaded, _ = checkpoint.load_network(path)
    torch.testing.assert_close(loaded.kernel, torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(loaded.scale, network.scale)
