"""The table of formats: every kind of file facegen reads is told apart by its name and first bytes alone, and
read by its format's reader."""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from facegen import formats
from facegen.errors import CorruptFileError
from facegen.formats.checkpoint import save_generator
from facegen.models.dcgan import DCGANConfig, DCGANGenerator
from tests.formats import progan_fixtures as fx
from tests.formats.nvidia_pickle_forge import take_apart, write_torch_zip

NVIDIA_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nvidia"


def tiny_dcgan() -> DCGANGenerator:
    torch.manual_seed(0)
    return DCGANGenerator(DCGANConfig(z_dim=8, generator_channels=4, resolution=32))


def own_checkpoint(folder: Path) -> Path:
    network = tiny_dcgan()
    return save_generator(folder / "own.safetensors", network, "dcgan", network.config)


def dcgan_tutorial_checkpoint(folder: Path, legacy: bool) -> Path:
    path = folder / "weights.tar"
    torch.save({"netG_state_dict": tiny_dcgan().state_dict()}, path, _use_new_zipfile_serialization=not legacy)
    return path


def nvidia_torch_zip(folder: Path) -> Path:
    path = folder / "snapshot.pt"
    write_torch_zip(path, take_apart(NVIDIA_FIXTURES / "sg2.pkl"))
    return path


# case -> (a file maker, the format it is)
FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "own safetensors": (own_checkpoint, "facegen"),
    "NVIDIA pickle": (lambda folder: Path(shutil.copyfile(NVIDIA_FIXTURES / "sg2.pkl", folder / "sg2.pkl")), "nvidia-pickle"),
    "NVIDIA snapshot in a torch zip": (nvidia_torch_zip, "nvidia-pickle"),
    "TensorFlow ProGAN pickle": (lambda folder: fx.write_tf_progan(folder / "progan.pkl", fx.tf_progan_variables()), "tf-progan"),
    "Facebook PGAN, legacy torch.save": (
        lambda folder: fx.write_facebook_pgan(folder / "pgan.pth", fx.facebook_pgan_generator()), "facebook-pgan"
    ),
    "Facebook PGAN, zip torch.save": (
        lambda folder: fx.write_facebook_pgan(folder / "pgan.pth", fx.facebook_pgan_generator(), legacy_format=False),
        "facebook-pgan",
    ),
    "DCGAN tutorial, legacy torch.save": (lambda folder: dcgan_tutorial_checkpoint(folder, legacy=True), "torch-dcgan"),
    "DCGAN tutorial, zip torch.save": (lambda folder: dcgan_tutorial_checkpoint(folder, legacy=False), "torch-dcgan"),
}  # fmt: skip


def refuse(*args, **kwargs):
    pytest.fail("sniffing unpickled something")


@pytest.mark.parametrize("case", list(FILES))
def test_each_file_is_told_apart_without_unpickling_and_read_by_its_format(tmp_path, monkeypatch, case):
    make_file, expected = FILES[case]
    path = make_file(tmp_path)
    with monkeypatch.context() as patch:
        for owner, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")]:
            patch.setattr(owner, name, refuse)
        assert formats.sniff_format(path) == expected
    assert path.suffix in formats.weights_format(expected).suffixes
    sniffed = formats.load_weights(path, model_id="sniffed")
    named = formats.load_weights(path, model_id="named", format_name=expected)
    faces = sniffed.sample(seeds=[0, 1])
    assert faces.shape == (2, sniffed.resolution, sniffed.resolution, 3)
    assert np.array_equal(named.sample(seeds=[0, 1]), faces)


def test_every_format_in_the_table_has_a_file_here():
    assert {expected for _, expected in FILES.values()} == {weights_format.name for weights_format in formats.FORMATS}


@pytest.mark.parametrize(
    "content, problem",
    [(b"", "is empty"), (b"\x00\x01garbage", "not a weights file facegen can read"), (b"GIF89a", "not a weights file")],
)
def test_a_file_of_no_format_is_a_corrupt_file_error(tmp_path, content, problem):
    path = tmp_path / "mystery.bin"
    path.write_bytes(content)
    with pytest.raises(CorruptFileError, match=problem):
        formats.sniff_format(path)
