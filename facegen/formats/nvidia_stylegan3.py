"""NVIDIA StyleGAN3 generators (`training.networks_stylegan3.Generator`, configs T and R) as facegen networks.

The geometry is read from what each layer object stored when it was built (sizes, sampling rates, cutoffs, tap
counts, up/down factors, padding, kernel size) instead of being derived again, so networks trained with any
resolution, width or schedule load as they are; the filters themselves arrive as buffers in the state dict.
Tensor names are NVIDIA's already (facegen's StyleGAN3 modules use them), so the state dict passes through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from facegen.errors import CorruptFileError
from facegen.models.stylegan3 import StyleGAN3Config, StyleGAN3InputGeometry, StyleGAN3LayerGeometry

if TYPE_CHECKING:
    from facegen.formats.nvidia_pickle import PersistentModule

# Schedule settings copied into our config when the constructor was given them, so the config describes the
# network; the geometry read from the layers is what runs.
SCHEDULE_KWARGS = {
    "channel_base": int,
    "channel_max": int,
    "filter_size": int,
    "lrelu_upsampling": int,
    "first_cutoff": float,
    "first_stopband": float,
    "last_stopband_rel": float,
}


def convert_stylegan3(g: PersistentModule) -> tuple[StyleGAN3Config, dict[str, torch.Tensor]]:
    """facegen's config and state dict for an NVIDIA StyleGAN3 `Generator` read by `read_network_pickle`."""
    mapping, synthesis = g.find("mapping"), g.find("synthesis")
    layer_names = _attribute(synthesis, "layer_names")
    if not layer_names:
        raise CorruptFileError("The StyleGAN3 synthesis network lists no layers; the file is damaged.")
    layers = tuple(_layer_geometry(name, synthesis.find(name)) for name in layer_names)
    clamps = {synthesis.find(name).attributes.get("conv_clamp") for name in layer_names}
    if len(clamps) != 1:
        raise CorruptFileError(f"The StyleGAN3 layers use different conv_clamp values {sorted(map(str, clamps))}.")
    init_kwargs = {**g.init_kwargs, **(g.init_kwargs.get("synthesis_kwargs") or {})}
    schedule = {name: kind(init_kwargs[name]) for name, kind in SCHEDULE_KWARGS.items() if name in init_kwargs}
    clamp = clamps.pop()
    config = StyleGAN3Config(
        z_dim=int(_attribute(g, "z_dim")),
        c_dim=int(_attribute(g, "c_dim")),
        w_dim=int(_attribute(g, "w_dim")),
        resolution=int(_attribute(g, "img_resolution")),
        image_channels=int(_attribute(g, "img_channels")),
        mapping_layers=int(_attribute(mapping, "num_layers")),
        mapping_lr_multiplier=float(_attribute(mapping.find("fc0"), "bias_gain")),
        num_layers=len(layers) - 1,
        num_critical=int(_attribute(synthesis, "num_critical")),
        margin_size=int(_attribute(synthesis, "margin_size")),
        conv_kernel=layers[0].conv_kernel,
        use_radial_filters=any(layer.down_radial for layer in layers),
        conv_clamp=None if clamp is None else float(clamp),
        output_scale=float(_attribute(synthesis, "output_scale")),
        num_fp16_res=int(init_kwargs.get("num_fp16_res", 4)),  # NVIDIA's default when the pickle omits it
        input_geometry=_input_geometry(synthesis.find("input")),
        layers=layers,
        **schedule,
    )
    if config.num_ws != _attribute(g, "num_ws"):
        raise CorruptFileError(
            f"The generator says it has {_attribute(g, 'num_ws')} ws but its synthesis network has "
            f"{len(layers)} layers plus the input; the file is damaged."
        )
    return config, {name: tensor.detach().clone().float() for name, tensor in g.state_dict().items()}


def _input_geometry(module: PersistentModule) -> StyleGAN3InputGeometry:
    return StyleGAN3InputGeometry(
        channels=int(_attribute(module, "channels")),
        size=_square(module, "size"),
        sampling_rate=float(_attribute(module, "sampling_rate")),
        bandwidth=float(_attribute(module, "bandwidth")),
    )


def _layer_geometry(name: str, module: PersistentModule) -> StyleGAN3LayerGeometry:
    padding = [int(value) for value in _attribute(module, "padding")]
    if len(padding) != 4:
        raise CorruptFileError(f"StyleGAN3 layer {name} has padding {padding}; four numbers were expected.")
    return StyleGAN3LayerGeometry(
        name=name,
        in_channels=int(_attribute(module, "in_channels")),
        out_channels=int(_attribute(module, "out_channels")),
        in_size=_square(module, "in_size"),
        out_size=_square(module, "out_size"),
        in_sampling_rate=float(_attribute(module, "in_sampling_rate")),
        out_sampling_rate=float(_attribute(module, "out_sampling_rate")),
        tmp_sampling_rate=float(_attribute(module, "tmp_sampling_rate")),
        in_cutoff=float(_attribute(module, "in_cutoff")),
        out_cutoff=float(_attribute(module, "out_cutoff")),
        in_half_width=float(_attribute(module, "in_half_width")),
        out_half_width=float(_attribute(module, "out_half_width")),
        up_factor=int(_attribute(module, "up_factor")),
        up_taps=int(_attribute(module, "up_taps")),
        down_factor=int(_attribute(module, "down_factor")),
        down_taps=int(_attribute(module, "down_taps")),
        down_radial=bool(_attribute(module, "down_radial")),
        padding=tuple(padding),
        conv_kernel=int(_attribute(module, "conv_kernel")),
        is_torgb=bool(_attribute(module, "is_torgb")),
    )


def _square(module: PersistentModule, name: str) -> int:
    """NVIDIA stores sizes as [width, height]; facegen's StyleGAN3 is square, as every released network is."""
    width, height = np.broadcast_to(np.asarray(_attribute(module, name)), [2]).tolist()
    if width != height:
        raise CorruptFileError(f"The {module.class_name} has a {width}x{height} {name}; facegen runs square ones only.")
    return int(width)


def _attribute(module: PersistentModule, name: str) -> Any:
    try:
        return module.attributes[name]
    except KeyError:
        raise CorruptFileError(
            f"The {module.class_name} has no attribute {name!r}; the file is not a StyleGAN3 network facegen knows."
        ) from None
