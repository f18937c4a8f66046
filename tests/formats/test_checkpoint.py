"""facegen's own checkpoint: a file that records only an architecture and its config (no `info`, as a network
exported by hand or by another tool) still tells the resolution it draws, whatever the architecture names it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facegen import hub
from facegen.formats.checkpoint import load_generator, save_generator
from facegen.formats.nvidia_pickle import load_nvidia_generator
from facegen.models import all_architectures, build_generator
from facegen.models.cdcgan import CDCGANConfig
from facegen.models.dcgan import DCGANConfig
from facegen.models.progan import ProGANConfig
from facegen.models.progan_facebook import FacebookProGANConfig
from facegen.models.stylegan2 import StyleGAN2Config
from facegen.models.stylegan3 import StyleGAN3Config

NVIDIA_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nvidia"
GROWING = dict(z_dim=16, resolution=32, fmap_base=64, fmap_max=16)
# architecture -> (a tiny config, the resolution its network draws)
TINY = {
    "dcgan": (DCGANConfig(z_dim=8, generator_channels=4, resolution=32), 32),
    "cdcgan": (CDCGANConfig(z_dim=8, generator_channels=4, resolution=32), 32),
    "progan": (ProGANConfig(**GROWING), 32),
    "progan-facebook": (FacebookProGANConfig(**GROWING), 32),
    "stylegan2": (StyleGAN2Config(z_dim=16, w_dim=16, img_resolution=16, channel_base=128, channel_max=16), 16),
    "stylegan3": (StyleGAN3Config(z_dim=16, w_dim=16, resolution=16, channel_base=128, channel_max=8), 16),
}


def test_every_architecture_that_checkpoints_record_has_a_tiny_case():
    recorded = {architecture.checkpoint_architecture for architecture in all_architectures()}
    assert set(TINY) == recorded


@pytest.mark.parametrize("architecture", list(TINY))
def test_checkpoint_without_info_reports_the_resolution_it_draws(tmp_path, architecture):
    torch.manual_seed(0)
    config, resolution = TINY[architecture]
    network = build_generator(architecture, config)
    path = save_generator(tmp_path / "bare.safetensors", network, architecture, config)
    generator = load_generator(path)
    assert generator.resolution == resolution
    assert generator.sample(seeds=[0]).shape == (1, resolution, resolution, 3)


def test_growing_progan_reports_the_resolution_it_has_grown_to(tmp_path):
    network = build_generator("progan", ProGANConfig(**GROWING))
    network.set_growth(16)
    path = save_generator(tmp_path / "growing.safetensors", network, "progan", network.config)
    generator = load_generator(path)
    assert generator.resolution == 16
    assert generator.sample(seeds=[0]).shape == (1, 16, 16, 3)


def test_converted_stylegan2_exported_bare_reports_its_real_resolution(tmp_path):
    network = load_nvidia_generator(NVIDIA_FIXTURES / "sg2.pkl").exportable_network
    path = save_generator(tmp_path / "sg2.safetensors", network, "stylegan2", network.config)
    generator = load_generator(path, model_id="sg2")
    assert generator.resolution == 64
    assert generator.sample(seeds=[0]).shape == (1, 64, 64, 3)


def test_the_hash_recorded_at_save_time_is_the_files(tmp_path):
    config, _ = TINY["dcgan"]
    path = save_generator(tmp_path / "own.safetensors", build_generator("dcgan", config), "dcgan", config)
    assert hub.recorded_sha256(path) == hub.sha256_file(path)
