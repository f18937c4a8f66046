"""WGAN-GP (Gulrajani et al. 2017) at DCGAN's sizes: DCGAN's generator, and a critic without batch norm.

The gradient penalty constrains the critic's gradient norm per sample; batch norm would make each output depend
on the rest of the batch, so the paper's critic leaves it out (section 4). The generator is DCGAN's, unchanged:
a WGAN-GP run saves it as a `dcgan` architecture, so every tool that loads a DCGAN loads it.
"""

from __future__ import annotations

from facegen.models.dcgan import DCGANConfig, DCGANDiscriminator


class WGANGPCritic(DCGANDiscriminator):
    """image [N, C, R, R] -> unbounded score [N]: higher means more real."""

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__(config, batch_norm=False)
