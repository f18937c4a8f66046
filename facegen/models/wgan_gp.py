"""WGAN-GP (Gulrajani et al. 2017) at DCGAN's sizes: DCGAN's generator, and a critic without batch norm.

The gradient penalty constrains the critic's gradient norm per sample; batch norm would make each output depend
on the rest of the batch, so the paper's critic leaves it out (section 4). The generator is DCGAN's, unchanged:
a WGAN-GP run saves it as a `dcgan` architecture, so every tool that loads a DCGAN loads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from facegen.models.architecture import Architecture, Training, require_whole_numbers_above_zero
from facegen.models.dcgan import RESOLUTIONS, DCGANConfig, DCGANDiscriminator, DCGANGenerator, DCGANTraining


class WGANGPCritic(DCGANDiscriminator):
    """image [N, C, R, R] -> unbounded score [N]: higher means more real."""

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__(config, batch_norm=False)


@dataclass(frozen=True, kw_only=True)
class WGANGPTraining(DCGANTraining):
    """Gulrajani et al.'s algorithm 1 defaults."""

    lr: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.9
    n_critic: int = 5  # critic updates per generator update, each on a fresh batch
    gp_weight: float = 10.0  # lambda

    def check(self) -> None:
        super().check()
        require_whole_numbers_above_zero(self, "n_critic")


ARCHITECTURE = Architecture(
    name="wgan-gp",
    title="WGAN-GP (Gulrajani et al. 2017): DCGAN's generator, a critic with gradient penalty",
    config_class=DCGANConfig,
    generator_class=DCGANGenerator,
    training=Training(WGANGPTraining, "facegen.train.architectures:wgan_gp_trainer", RESOLUTIONS),
    saves_generator_as="dcgan",
)
