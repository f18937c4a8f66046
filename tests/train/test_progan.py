"""ProGAN: NVIDIA's layer conventions, fade-in, and a training run that grows through resolutions."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from facegen.formats.checkpoint import load_generator, save_generator
from facegen.models.progan import (
    EqualizedConv2d,
    LatentToFeatures,
    ProGANConfig,
    ProGANDiscriminator,
    ProGANGenerator,
    minibatch_stddev,
    upsample,
)
from facegen.train import runs
from facegen.train.config import resolve_config
from facegen.train.growth import GrowthStage, growth_stage
from facegen.train.loop import start_run

TINY = ProGANConfig(z_dim=16, resolution=32, fmap_base=64, fmap_max=16)


def test_equalized_learning_rate_scales_weights_at_run_time_as_nvidia_does():
    conv = EqualizedConv2d(8, 1, 3)
    ones_conv = EqualizedConv2d(16, 1, 1, gain=1.0)  # a ToRGB layer
    dense = LatentToFeatures(8, 1)
    stored = EqualizedConv2d(64, 64, 3).weight
    assert stored.std().item() == pytest.approx(1.0, abs=0.02), "weights are stored with unit variance"
    for layer in (conv, ones_conv, dense):
        torch.nn.init.ones_(layer.weight)
    # fan_in 8*3*3 = 72, gain sqrt(2): 72 * sqrt(2)/sqrt(72) = 12 at an inner pixel of an all-ones input
    assert conv(torch.ones(1, 8, 5, 5))[0, 0, 2, 2].item() == pytest.approx(12.0)
    assert ones_conv(torch.ones(1, 16, 1, 1)).item() == pytest.approx(4.0)  # gain 1: 16 / sqrt(16)
    # the 4x4 dense layer's gain is sqrt(2)/4: 8 * sqrt(2)/4 / sqrt(8) = 1
    assert dense(torch.ones(1, 8)).flatten().tolist() == pytest.approx([1.0] * 16)


def test_minibatch_stddev_appends_the_groups_standard_deviation():
    x = torch.tensor([1.0, 5.0, 2.0, 2.0]).view(4, 1, 1, 1)  # groups of 2 pair samples 0 with 2 and 1 with 3
    planes = minibatch_stddev(x, group_size=2)[:, 1].flatten()
    assert planes.tolist() == pytest.approx([0.5, 1.5, 0.5, 1.5], abs=1e-6)


def test_fade_in_blends_the_upsampled_previous_resolution_into_the_new_one():
    torch.manual_seed(0)
    generator = ProGANGenerator(TINY)
    z = torch.randn(3, 16)
    generator.set_growth(8)
    coarse = generator(z)
    generator.set_growth(16)
    fine = generator(z)
    generator.set_growth(16, alpha=0.3)
    blended = generator(z)
    assert (coarse.shape[-1], fine.shape[-1], blended.shape[-1]) == (8, 16, 16)
    assert torch.allclose(blended, 0.7 * upsample(coarse) + 0.3 * fine, atol=1e-5)
    assert generator.lod.item() == pytest.approx(1.7), "NVIDIA's lod: one doubling below 32, 0.7 of the way back"


def test_discriminator_follows_the_growth_too():
    discriminator = ProGANDiscriminator(TINY)
    for resolution, alpha in ((4, 1.0), (8, 0.5), (32, 1.0)):
        discriminator.set_growth(resolution, alpha)
        assert discriminator(torch.randn(4, 3, resolution, resolution)).shape == (4,)


def test_a_checkpoint_saved_mid_growth_renders_at_that_stage(tmp_path):
    torch.manual_seed(1)
    network = ProGANGenerator(TINY)
    network.set_growth(16, alpha=0.5)
    expected = network(torch.from_numpy(np.random.RandomState(0).randn(1, 16).astype(np.float32)))
    path = save_generator(tmp_path / "g.safetensors", network, "progan", TINY, {"resolution": 16})
    generator = load_generator(path)
    assert (generator.network.current_resolution, generator.network.alpha) == (16, 0.5)
    image = generator.render(generator.latents_for_seeds([0]))
    assert torch.allclose(image, expected, atol=1e-6)


def test_schedule_fades_in_each_doubling_between_stable_phases():
    config = resolve_config(dict(arch="progan", data="x", steps=50, resolution=64, start_resolution=16))
    # 5 phases of 10 steps: 16 stable, 32 fade, 32 stable, 64 fade, 64 stable
    assert growth_stage(config, 1) == GrowthStage(16, 1.0)
    assert growth_stage(config, 11) == GrowthStage(32, 0.1)
    assert growth_stage(config, 15) == GrowthStage(32, 0.5)
    assert growth_stage(config, 21) == GrowthStage(32, 1.0)
    assert growth_stage(config, 40) == GrowthStage(64, 1.0)
    assert growth_stage(config, 50) == GrowthStage(64, 1.0)


def test_training_grows_through_resolutions_with_fade_in_and_the_samples_grow(face_folder, tmp_path, single_thread):
    config = resolve_config(
        dict(
            arch="progan", data=str(face_folder), steps=10, batch=8, resolution=32, start_resolution=8,
            z_dim=16, fmap_base=64, fmap_max=16, log_every=1, sample_every=1, checkpoint_every=5,
            cache_dir=str(tmp_path / "cache"), out=str(tmp_path / "run"),
        )
    )  # fmt: skip
    result = start_run(config, config.out, progress=False)
    assert result.state == "finished"
    stages = [(record["resolution"], record["alpha"]) for record in runs.read_metrics(result.run_dir)]
    # 10 steps, 5 phases of 2: 8 stable, 16 fading in, 16 stable, 32 fading in, 32 stable
    assert stages == [(8, 1.0), (8, 1.0), (16, 0.5), (16, 1.0), (16, 1.0), (16, 1.0), (32, 0.5), (32, 1.0), (32, 1.0), (32, 1.0)]
    tile_sizes = [Image.open(grid.path).size[0] // 4 for grid in runs.list_sample_grids(result.run_dir)]
    assert tile_sizes == [8, 8, 16, 16, 16, 16, 32, 32, 32, 32]

    midway = runs.find_generator_checkpoint(str(result.run_dir), step=5)
    assert midway.name == "generator_ema.safetensors", "ProGAN keeps a moving-average generator and samples use it"
    assert load_generator(midway).sample(seeds=[0]).shape == (1, 16, 16, 3)
    final = load_generator(runs.find_generator_checkpoint(str(result.run_dir)))
    assert final.resolution == 32 and final.sample(seeds=[0]).shape == (1, 32, 32, 3)
    assert math.isfinite(runs.read_metrics(result.run_dir)[-1]["gradient_penalty"])
