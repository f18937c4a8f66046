"""The README's "Add a pretrained model" recipe, followed step by step: a catalog entry and a model card for a file
on a (loopback) host, then the same for a file in a format facegen did not know, added as one row of the table."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from facegen import formats, registry
from facegen.cli import main as cli_main
from facegen.errors import FacegenError
from facegen.formats.converted import converted_path
from facegen.formats.torch_checkpoint import dcgan_config_from_state, load_dcgan_generator
from facegen.generator import Generator, ModelInfo
from facegen.hub import sha256_file
from facegen.models.dcgan import DCGANConfig, DCGANGenerator
from tests.fake_host import FakeHost

SEEDS = [0, 1, 2]
CARD = """# Tiny faces (test)

A DCGAN small enough for a test: 32×32 pixels, 10 latent dimensions. It exists to show that a catalog entry, a
model card and (when the file format is new) one row of `facegen.formats.FORMATS` are all a model needs.
"""


@pytest.fixture
def host():
    host = FakeHost()
    yield host
    host.close()


def tiny_dcgan(seed: int) -> DCGANGenerator:
    torch.manual_seed(seed)
    return DCGANGenerator(DCGANConfig(z_dim=10, generator_channels=4, resolution=32))


def add_to_catalog(tmp_path: Path, monkeypatch, model_id: str, format_name: str, served: Path, url: str) -> None:
    """Steps 1 and 2 of the recipe: a `[models.ID]` table in catalog.toml and its card in cards/."""
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / f"{model_id}.md").write_text(CARD)
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        f"""
[models.{model_id}]
title = "Tiny faces"
family = "dcgan"
format = "{format_name}"
resolution = 32
z_dim = 10
filename = "{served.name}"
size_bytes = {served.stat().st_size}
sha256 = "{hashlib.sha256(served.read_bytes()).hexdigest()}"
license = "test only"
card = "cards/{model_id}.md"

[[models.{model_id}.sources]]
kind = "url"
url = "{url}"
"""
    )
    monkeypatch.setattr(registry, "CATALOG_PATH", catalog)
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))


def test_a_catalog_entry_and_a_card_make_a_model(host, tmp_path, monkeypatch, capsys):
    served = tmp_path / "tiny-faces.pt"
    torch.save({"netG_state_dict": tiny_dcgan(seed=3).state_dict()}, served)
    host.serve(served.name, served.read_bytes())
    add_to_catalog(tmp_path, monkeypatch, "tiny-faces", "torch-dcgan", served, host.url(served.name))

    assert registry.catalog_entry("tiny-faces").card == CARD
    assert cli_main(["models"]) == 0
    listed = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("tiny-faces "))
    assert listed.split()[1:4] == ["downloadable", "32", "dcgan"]

    out = tmp_path / "faces.png"
    assert cli_main(["sample", "--model", "tiny-faces", "--seeds", "0-2", "--out", str(out)]) == 0
    assert out.stat().st_size > 0
    generator = registry.load_generator("tiny-faces")
    expected = load_dcgan_generator(served, "the file itself").sample(seeds=SEEDS)
    assert np.array_equal(generator.sample(seeds=SEEDS), expected)
    assert generator.identity.weights_sha256 == sha256_file(served)


TOY_MAGIC = b"TOY-DCGAN\n"


def write_toy_file(path: Path, seed: int) -> Path:
    """The new format of step 3: a DCGAN's state dict as safetensors bytes behind a magic line."""
    path.write_bytes(TOY_MAGIC + save_safetensors(tiny_dcgan(seed).state_dict()))
    return path


def load_toy_generator(path: Path, model_id: str, device: str = "cpu") -> Generator:
    """Step 3's reader: the file's names mapped onto facegen's DCGAN, with the reader signature every format has."""
    stored = load_safetensors(Path(path).read_bytes()[len(TOY_MAGIC) :])
    # safetensors keeps names sorted as text (main.12 before main.3); the layer sizes are read in layer order
    state = dict(sorted(stored.items(), key=lambda item: int(item[0].split(".")[1])))
    config = dcgan_config_from_state(state)
    network = DCGANGenerator(config)
    network.load_state_dict(state)
    info = ModelInfo(model_id, "dcgan", config.z_dim, config.resolution)
    return Generator(network, info, device)


TOY_FORMAT = formats.WeightsFormat(
    "toy-dcgan",
    "a DCGAN state dict as safetensors behind a magic line (a test's format)",
    (".toy",),
    lambda start: start.head.startswith(TOY_MAGIC),
    f"{__name__}:load_toy_generator",
    foreign=True,
)


def test_a_new_format_is_one_row_of_the_table(host, tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "FORMATS", formats.FORMATS + (TOY_FORMAT,))
    served = write_toy_file(tmp_path / "tiny-faces.toy", seed=4)
    assert formats.sniff_format(served) == "toy-dcgan"
    host.serve(served.name, served.read_bytes())
    add_to_catalog(tmp_path, monkeypatch, "tiny-toy", "toy-dcgan", served, host.url(served.name))

    expected = load_toy_generator(served, "the file itself").sample(seeds=SEEDS)
    assert np.array_equal(registry.load_generator("tiny-toy").sample(seeds=SEEDS), expected)
    cached = registry.cached_path(registry.catalog_entry("tiny-toy"))
    assert converted_path(cached).exists(), "a foreign format is converted once"
    requests = len(host.requests)
    again = registry.load_generator("tiny-toy")
    assert len(host.requests) == requests
    assert np.array_equal(again.sample(seeds=SEEDS), expected)
    assert again.identity.weights_sha256 == sha256_file(served)


def test_a_format_missing_from_the_table_is_named(tmp_path, monkeypatch, host):
    served = write_toy_file(tmp_path / "tiny-faces.toy", seed=4)
    host.serve(served.name, served.read_bytes())
    add_to_catalog(tmp_path, monkeypatch, "tiny-toy", "toy-dcgan", served, host.url(served.name))
    with pytest.raises(FacegenError, match=r"No reader for the weights format 'toy-dcgan'\. Known formats: facegen, "):
        registry.load_generator("tiny-toy")
    assert host.requests == [], "nothing is downloaded that could not be read"
