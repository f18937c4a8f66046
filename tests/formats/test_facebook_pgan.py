"""Facebook's PGAN checkpoints (pytorch_GAN_zoo): small fixtures in the documented layout, read weights-only into
facegen's ProGAN family, against a plain reference of pytorch_GAN_zoo's math (bias scaled too, He gain for all)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from facegen import formats, registry
from facegen.errors import CorruptFileError, UnsafePickleError
from facegen.formats.facebook_pgan import load_facebook_pgan_generator
from tests.formats import progan_fixtures as fx

Z = np.random.default_rng(3).standard_normal((3, 8)).astype(np.float32)


@pytest.mark.parametrize("legacy_format", [True, False], ids=["legacy-torch-save", "zip-torch-save"])
@pytest.mark.parametrize(
    "config",
    [None, {"depthScale0": 16, "lossMode": "WGANGP"}, "absent"],
    ids=["BaseConfig-object", "dict", "no-config"],
)
def test_checkpoint_renders_what_pytorch_gan_zoo_math_gives(tmp_path, legacy_format, config):
    state = fx.facebook_pgan_generator()
    path = fx.write_facebook_pgan(tmp_path / "pgan.pth", state, config={} if config == "absent" else config,
                                  legacy_format=legacy_format)  # fmt: skip
    generator = load_facebook_pgan_generator(path, model_id="fixture")
    images = generator.render(Z)
    assert images.shape == (3, 3, 16, 16) and generator.resolution == 16
    torch.testing.assert_close(images, fx.facebook_pgan_reference(state, Z), rtol=1e-4, atol=1e-4)


def test_older_key_names_without_module_load_the_same(tmp_path):
    legacy_keys = fx.facebook_pgan_generator(legacy_keys=True)
    generator = load_facebook_pgan_generator(fx.write_facebook_pgan(tmp_path / "pgan.pth", legacy_keys))
    torch.testing.assert_close(generator.render(Z), fx.facebook_pgan_reference(legacy_keys, Z), rtol=1e-4, atol=1e-4)


def test_dcgan_loss_network_ends_in_tanh(tmp_path):
    state = fx.facebook_pgan_generator(seed=4)
    path = fx.write_facebook_pgan(tmp_path / "pgan.pth", state, config=fx.BaseConfig(lossMode="DCGAN"))
    images = load_facebook_pgan_generator(path).render(Z)
    torch.testing.assert_close(images, fx.facebook_pgan_reference(state, Z, tanh=True), rtol=1e-4, atol=1e-4)
    assert images.abs().max() < 1


def test_per_position_format_bias_matters(tmp_path):
    """The 4x4 layer's bias differs per position: a per-channel bias (NVIDIA's) would not reproduce the image."""
    state = fx.facebook_pgan_generator(seed=6)
    images = load_facebook_pgan_generator(fx.write_facebook_pgan(tmp_path / "pgan.pth", state)).render(Z)
    averaged = dict(state)
    averaged["formatLayer.module.bias"] = state["formatLayer.module.bias"].view(-1, 16).mean(1).repeat_interleave(16)
    assert (images - fx.facebook_pgan_reference(averaged, Z)).abs().max() > 1e-2


def test_real_depth_schedule_fits_facegens_progan(tmp_path):
    """pytorch_GAN_zoo's default depths 512,512,512,512,256,... follow NVIDIA's min(8192 / 2^stage, 512)."""
    state = fx.facebook_pgan_generator(depths=[32, 32, 32, 32, 16, 8], z_dim=8, seed=2)
    generator = load_facebook_pgan_generator(fx.write_facebook_pgan(tmp_path / "pgan.pth", state))
    assert generator.resolution == 128
    assert generator.exportable_network.config.fmap_base == 512 and generator.exportable_network.config.fmap_max == 32


def test_depths_that_follow_another_rule_do_not_fit(tmp_path):
    path = fx.write_facebook_pgan(tmp_path / "pgan.pth", fx.facebook_pgan_generator(depths=[16, 12, 8]))
    with pytest.raises(CorruptFileError, match=r"pgan.pth: its feature counts per resolution \[16, 12, 8\]"):
        load_facebook_pgan_generator(path)


def test_network_without_pixel_norm_is_refused(tmp_path):
    config = fx.BaseConfig(perChannelNormalization=False)
    path = fx.write_facebook_pgan(tmp_path / "pgan.pth", fx.facebook_pgan_generator(), config=config)
    with pytest.raises(CorruptFileError, match="without pixel norm"):
        load_facebook_pgan_generator(path)


class RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_code_in_the_config_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "executed.txt"
    config = fx.BaseConfig(lossMode=RunsCommand(marker))
    path = fx.write_facebook_pgan(tmp_path / "pgan.pth", fx.facebook_pgan_generator(), config=config)
    with pytest.raises(UnsafePickleError, match="pgan.pth holds more than weights"):
        load_facebook_pgan_generator(path)
    assert not marker.exists()


@pytest.mark.parametrize("legacy_format", [True, False], ids=["legacy-torch-save", "zip-torch-save"])
def test_truncated_checkpoint_says_so(tmp_path, legacy_format):
    path = fx.write_facebook_pgan(tmp_path / "pgan.pth", fx.facebook_pgan_generator(), legacy_format=legacy_format)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(CorruptFileError, match="pgan.pth is not a readable PyTorch checkpoint"):
        load_facebook_pgan_generator(path)


@pytest.mark.parametrize("legacy_format", [True, False], ids=["legacy-torch-save", "zip-torch-save"])
def test_weights_path_is_recognised_as_facebook_pgan(tmp_path, legacy_format):
    state = fx.facebook_pgan_generator()
    path = fx.write_facebook_pgan(tmp_path / "celebaHQ_tiny.pth", state, legacy_format=legacy_format)
    assert formats.sniff_format(path) == "facebook-pgan"
    assert registry.load_generator(str(path)).sample(seeds=[0, 1]).shape == (2, 16, 16, 3)
