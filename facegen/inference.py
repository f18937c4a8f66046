"""Inference preparation: the one place where networks are rearranged for speed before rendering.

Folding batch norm into the preceding (transposed) convolution and storing weights channels_last lets oneDNN run
the transposed convolutions in its blocked layout, faster than the plain eager module, with outputs equal within
1e-5 (`bench/sample.py`; figures in `bench/README.md`).
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


@torch.no_grad()
def prepare_for_inference(network: nn.Module) -> nn.Module:
    """An eval-mode copy with conv+batch-norm pairs folded and channels_last weights; others returned as they are."""
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
    return prepared.to(memory_format=torch.channels_last)
