"""The README's "Add an architecture" recipe, followed step by step: a toy architecture registered here trains two
steps through the normal training entry point and samples through the Generator interface."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from facegen import models
from facegen.formats.checkpoint import load_generator
from facegen.models import Architecture, Training, TrainingSettings
from facegen.train import runs
from facegen.train.config import ConfigError, resolve_config
from facegen.train.gans import Conditioning, GANParts
from facegen.train.loop import start_run
from facegen.train.objectives import NonSaturatingGAN


# 1. the networks and the generator's config, as a model file holds them
@dataclass(frozen=True)
class ToyConfig:
    z_dim: int = 8
    resolution: int = 8


class ToyGenerator(nn.Module):
    """z [N, z_dim] -> tanh image [N, 3, R, R] from one linear layer."""

    def __init__(self, config: ToyConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.z_dim, 3 * config.resolution**2)

    def forward(self, z, c=None, truncation_psi=1.0, noise_mode="const"):
        size = self.config.resolution
        return torch.tanh(self.linear(z * truncation_psi)).view(len(z), 3, size, size)


class ToyDiscriminator(nn.Module):
    def __init__(self, config: ToyConfig) -> None:
        super().__init__()
        self.linear = nn.Linear(3 * config.resolution**2, 1)

    def forward(self, images, c=None):
        return self.linear(images.flatten(1)).flatten()


# 2. its training settings, with their defaults
@dataclass(frozen=True, kw_only=True)
class ToyTraining(TrainingSettings):
    resolution: int = 8
    z_dim: int = 8
    lr: float = 1e-2
    beta1: float = 0.5
    beta2: float = 0.999


# 3. the function that builds the trainer's parts (facegen's own live in facegen/train/architectures.py)
def toy_trainer(config, conditioning: Conditioning) -> GANParts:
    network_config = ToyConfig(config.z_dim, config.resolution)
    return GANParts(ToyGenerator(network_config), ToyDiscriminator(network_config), NonSaturatingGAN())


# 4. the description, registered (facegen's own are listed in facegen/models/__init__.py instead)
TOY = Architecture(
    name="toy",
    title="A linear toy GAN",
    config_class=ToyConfig,
    generator_class=ToyGenerator,
    training=Training(ToyTraining, f"{__name__}:toy_trainer", resolutions=(8,)),
)


@pytest.fixture
def toy_registered():
    models.register(TOY)
    yield
    models.unregister(TOY.name)


def test_a_registered_toy_architecture_trains_two_steps_and_samples(toy_registered, face_folder, tmp_path, single_thread):
    config = resolve_config(
        dict(arch="toy", data=str(face_folder), steps=2, batch=4, log_every=1, out=str(tmp_path / "run"),
             cache_dir=str(tmp_path / "cache"))
    )  # fmt: skip
    assert (config.resolution, config.lr) == (8, 1e-2), "the description's defaults"

    result = start_run(config, config.out, progress=False)

    assert (result.state, result.step) == ("finished", 2)
    assert [record["step"] for record in runs.read_metrics(result.run_dir)] == [1, 2]
    generator = load_generator(runs.find_generator_checkpoint(str(result.run_dir)))
    assert isinstance(generator.network, ToyGenerator) and generator.info.family == "toy"
    faces = generator.sample(seeds=[0, 1])
    assert faces.shape == (2, 8, 8, 3) and faces.dtype == np.uint8
    assert not np.array_equal(faces[0], faces[1])
    assert models.architecture_of(generator.network) == "toy"


def test_the_toy_architecture_has_only_its_own_settings(toy_registered):
    with pytest.raises(ConfigError, match="Unknown setting\\(s\\) generator_channels for toy. Its settings: arch, data"):
        resolve_config(dict(arch="toy", data="faces/", steps=2, generator_channels=8))
    with pytest.raises(ConfigError, match="toy trains at 8 pixels, not 64"):
        resolve_config(dict(arch="toy", data="faces/", steps=2, resolution=64))


def test_an_unregistered_architecture_is_unknown():
    with pytest.raises(ConfigError, match="Unknown architecture 'toy'. Choose one of: dcgan, wgan-gp, progan, cdcgan."):
        resolve_config(dict(arch="toy", data="faces/", steps=2))
