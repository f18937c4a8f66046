"""The parts facegen's own architectures train with; their descriptions (in facegen.models) name these functions.

Each builds the networks from a run's settings, initialised as the architecture's paper does (creation order
matters: a seed gives the weights it gave before), and picks the objective and growth schedule.
"""

from __future__ import annotations

from torch import nn

from facegen.models.cdcgan import CDCGANConfig, CDCGANDiscriminator, CDCGANGenerator
from facegen.models.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator, init_dcgan_weights
from facegen.models.progan import ProGANConfig, ProGANDiscriminator, ProGANGenerator
from facegen.models.wgan_gp import WGANGPCritic
from facegen.train.config import TrainConfig
from facegen.train.gans import Conditioning, GANParts
from facegen.train.growth import ProgressiveGrowth
from facegen.train.objectives import NonSaturatingGAN, WassersteinGP


def dcgan_initialised(generator: nn.Module, discriminator: nn.Module) -> tuple[nn.Module, nn.Module]:
    generator.apply(init_dcgan_weights)
    discriminator.apply(init_dcgan_weights)
    return generator, discriminator


def dcgan_config(config: TrainConfig) -> DCGANConfig:
    return DCGANConfig(config.z_dim, config.generator_channels, config.discriminator_channels, config.resolution)


def dcgan_trainer(config: TrainConfig, conditioning: Conditioning) -> GANParts:
    """Radford et al.'s DCGAN."""
    generator, discriminator = dcgan_initialised(DCGANGenerator(dcgan_config(config)), DCGANDiscriminator(dcgan_config(config)))
    return GANParts(generator, discriminator, NonSaturatingGAN())


def cdcgan_trainer(config: TrainConfig, conditioning: Conditioning) -> GANParts:
    """DCGAN conditioned on the data set's binary attributes (CelebA's 40)."""
    network_config = CDCGANConfig(
        config.z_dim, conditioning.label_count, config.generator_channels, config.discriminator_channels,
        config.resolution,
    )  # fmt: skip
    generator, discriminator = dcgan_initialised(CDCGANGenerator(network_config), CDCGANDiscriminator(network_config))
    return GANParts(generator, discriminator, NonSaturatingGAN())


def wgan_gp_trainer(config: TrainConfig, conditioning: Conditioning) -> GANParts:
    """Gulrajani et al.'s WGAN-GP: DCGAN's generator against a critic without batch norm."""
    generator, critic = dcgan_initialised(DCGANGenerator(dcgan_config(config)), WGANGPCritic(dcgan_config(config)))
    return GANParts(generator, critic, WassersteinGP(config.gp_weight, config.n_critic))


def progan_trainer(config: TrainConfig, conditioning: Conditioning) -> GANParts:
    """Karras et al.'s ProGAN: WGAN-GP with drift, growing with fade-ins; its EMA generator is the one sampled."""
    network_config = ProGANConfig(config.z_dim, config.resolution, config.fmap_base, config.fmap_max)
    return GANParts(
        ProGANGenerator(network_config),
        ProGANDiscriminator(network_config),
        WassersteinGP(config.gp_weight, config.n_critic, config.drift_weight),
        ProgressiveGrowth(config),
    )
