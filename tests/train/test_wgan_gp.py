"""WGAN-GP end to end: n_critic critic updates per generator update, a critic without batch norm."""

import math

from torch import nn

from facegen.formats.checkpoint import load_generator
from facegen.models.dcgan import DCGANConfig
from facegen.models.wgan_gp import WGANGPCritic
from facegen.train import runs
from facegen.train.config import resolve_config
from facegen.train.loop import start_run


def test_the_critic_has_no_batch_norm():
    critic = WGANGPCritic(DCGANConfig(resolution=32, discriminator_channels=4))
    assert not any(isinstance(module, nn.BatchNorm2d) for module in critic.modules())


def test_training_runs_five_critic_updates_per_generator_update(face_folder, tmp_path, single_thread):
    config = resolve_config(
        dict(arch="wgan-gp", data=str(face_folder), steps=4, batch=8, resolution=32, generator_channels=4,
             discriminator_channels=4, z_dim=8, log_every=2, out=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
    )  # fmt: skip
    assert (config.n_critic, config.lr, config.beta1, config.beta2) == (5, 1e-4, 0.0, 0.9), "Gulrajani et al.'s defaults"
    result = start_run(config, config.out, progress=False)
    metrics = runs.read_metrics(result.run_dir)
    assert [record["images_seen"] for record in metrics] == [2 * 5 * 8, 4 * 5 * 8], "each critic update sees a fresh batch"
    assert all(math.isfinite(record["gradient_penalty"]) and record["gradient_penalty"] >= 0 for record in metrics)
    generator = load_generator(runs.find_generator_checkpoint(str(result.run_dir)))
    assert generator.info.family == "wgan-gp"
    assert generator.sample(seeds=[0, 1]).shape == (2, 32, 32, 3)
