"""Where each architecture's latent enters its network: the weights and features directions are found from.

- StyleGAN2/3: every style affine (w -> per-channel styles) and the index of the w it reads;
- DCGAN, WGAN-GP (a DCGAN generator), cDCGAN, ProGAN: the first layer, a linear map of z, and the first block's
  output (after its nonlinearity), the "z-side features" GANSpace computes principal components of.
"""

from __future__ import annotations

import torch
from torch import nn

from facegen.errors import FacegenError
from facegen.models.cdcgan import CDCGANGenerator
from facegen.models.dcgan import DCGANGenerator
from facegen.models.progan import ProGANGenerator, lrelu, pixel_norm
from facegen.models.stylegan2 import StyleGAN2Generator
from facegen.models.stylegan3 import StyleGAN3Generator


def style_affine_weights(network: nn.Module) -> list[tuple[int, torch.Tensor]]:
    """(w index, affine weight [channels, w_dim]) for every modulated layer, in synthesis order."""
    synthesis = network.synthesis
    if isinstance(network, StyleGAN3Generator):
        # layer i reads ws[i + 1]; ws[0] drives the input's learned rotation and translation, not a style
        return [(index + 1, getattr(synthesis, name).affine.weight) for index, name in enumerate(synthesis.layer_names)]
    if isinstance(network, StyleGAN2Generator):
        pairs, w_index = [], 0
        for resolution in network.config.block_resolutions:
            block = getattr(synthesis, f"b{resolution}")
            if block.num_conv == 2:
                pairs.append((w_index, block.conv0.affine.weight))
            pairs.append((w_index + block.num_conv - 1, block.conv1.affine.weight))
            if block.torgb is not None:
                # a block's ToRGB shares its w with the next block's first convolution
                pairs.append((w_index + block.num_conv, block.torgb.affine.weight))
            w_index += block.num_conv
        return pairs
    raise FacegenError(f"No style layers known for a {type(network).__name__}.")


def first_layer_matrix(network: nn.Module) -> torch.Tensor:
    """The first layer as a matrix [features, z_dim] acting on z (labels' columns left out)."""
    if isinstance(network, (DCGANGenerator, CDCGANGenerator)):
        weight = network.main[0].weight[: network.config.z_dim]  # ConvTranspose2d: [in, out, 4, 4]
        return weight.flatten(1).t()
    if isinstance(network, ProGANGenerator):
        return network.dense.weight  # [channels * 16, z_dim]
    raise FacegenError(f"No first layer known for a {type(network).__name__}; closed-form directions need one.")


def first_block_features(network: nn.Module, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """The first block's output [N, features] for z [N, z_dim]: linear layer, normalisation, nonlinearity."""
    if isinstance(network, CDCGANGenerator):
        labels = z.new_zeros(len(z), network.config.c_dim) if labels is None else labels
        return network.main[:3](torch.cat([z, labels.to(z)], dim=1)[:, :, None, None]).flatten(1)
    if isinstance(network, DCGANGenerator):
        return network.main[:3](z[:, :, None, None]).flatten(1)
    if isinstance(network, ProGANGenerator):
        x = pixel_norm(z) if network.config.normalize_latents else z
        return pixel_norm(lrelu(network.dense(x))).flatten(1)
    raise FacegenError(f"No first block known for a {type(network).__name__}; PCA directions need one.")
