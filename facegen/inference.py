"""Inference preparation: the one place where networks are rearranged for speed before rendering.

Folding batch norm into the preceding (transposed) convolution and storing weights channels_last lets oneDNN run
the transposed convolutions in its blocked layout, faster than the plain eager module, with outputs equal within
1e-5 (`bench/sample.py`; figures in `bench/README.md`). A transposed convolution of a latent vector (DCGAN's first
layer) runs as the matrix product it is.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

FOLDABLE_CONVOLUTIONS = (nn.Conv2d, nn.ConvTranspose2d)


def fold_batch_norm(convolution: nn.Conv2d | nn.ConvTranspose2d, norm: nn.BatchNorm2d) -> None:
    """Make `convolution` compute convolution followed by the (eval-mode) batch norm; in place."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    shift = norm.bias - norm.running_mean * scale
    # ConvTranspose2d weights are [in, out, k, k]; Conv2d weights are [out, in, k, k]
    out_axis = 1 if isinstance(convolution, nn.ConvTranspose2d) else 0
    shape = [1, 1, 1, 1]
    shape[out_axis] = -1
    old_bias = convolution.bias if convolution.bias is not None else torch.zeros_like(shift)
    convolution.weight = nn.Parameter(convolution.weight * scale.view(shape), requires_grad=False)
    convolution.bias = nn.Parameter(old_bias * scale + shift, requires_grad=False)


def has_foldable_pairs(network: nn.Module) -> bool:
    return any(
        isinstance(first, FOLDABLE_CONVOLUTIONS) and isinstance(second, nn.BatchNorm2d)
        for sequence in network.modules()
        if isinstance(sequence, nn.Sequential)
        for first, second in zip(sequence, list(sequence)[1:])
    )


class LatentProjection(nn.ConvTranspose2d):
    """A transposed convolution that, given a 1x1 input (a latent vector), computes the one matrix product it then
    is: torch's transposed-convolution kernels are slower at it, forwards and (in projection) backwards."""

    @classmethod
    def replacing(cls, convolution: nn.ConvTranspose2d) -> LatentProjection:
        projection = cls(
            convolution.in_channels, convolution.out_channels, convolution.kernel_size, bias=convolution.bias is not None
        )
        projection.weight, projection.bias = convolution.weight, convolution.bias
        return projection

    @staticmethod
    def applies_to(module: nn.Module) -> bool:
        return (
            type(module) is nn.ConvTranspose2d
            and module.stride == (1, 1)
            and module.padding == (0, 0)
            and module.output_padding == (0, 0)
            and module.dilation == (1, 1)
            and module.groups == 1
        )

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if x.shape[-2:] != (1, 1) or output_size is not None:
            return super().forward(x, output_size)
        out = (x.flatten(1) @ self.weight.flatten(1)).view(len(x), self.out_channels, *self.kernel_size)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


@torch.no_grad()
def prepare_for_inference(network: nn.Module) -> nn.Module:
    """An eval-mode copy with conv+batch-norm pairs folded, latent projections as matrix products and channels_last
    weights; networks without batch norm to fold are returned as they are."""
    if not has_foldable_pairs(network):
        return network
    prepared = copy.deepcopy(network).eval()
    for sequence in prepared.modules():
        if not isinstance(sequence, nn.Sequential):
            continue
        for index in range(len(sequence) - 1):
            first, second = sequence[index], sequence[index + 1]
            if isinstance(first, FOLDABLE_CONVOLUTIONS) and isinstance(second, nn.BatchNorm2d):
                fold_batch_norm(first, second)
                sequence[index + 1] = nn.Identity()
        for index, module in enumerate(sequence):
            if LatentProjection.applies_to(module):
                sequence[index] = LatentProjection.replacing(module)
    return prepared.to(memory_format=torch.channels_last)
