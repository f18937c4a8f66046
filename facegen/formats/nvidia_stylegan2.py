"""NVIDIA StyleGAN2 generators (StyleGAN2-ADA-PyTorch `training.networks`, StyleGAN3 repo
`training.networks_stylegan2`) as read by `facegen.formats.nvidia_pickle`, converted to facegen's StyleGAN2.

Hyper-parameters come from the resolved attributes and the tensor shapes the pickle holds, never from its source
code or constructor defaults: the two repositories differ in defaults (conv_clamp None vs 256, num_fp16_res 0 vs
4, synthesis kwargs nested vs flattened), but their resolved attributes and parameter names are the same.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from facegen.errors import FacegenError
from facegen.models.stylegan2 import StyleGAN2Config

if TYPE_CHECKING:
    from facegen.formats.nvidia_pickle import PersistentModule

# NVIDIA keeps the same 2-D low-pass filter in every block and layer; facegen keeps its 1-D taps in the config.
FILTER_BUFFER = "resample_filter"


class UnsupportedNetworkError(FacegenError):
    pass


def convert_stylegan2(g: PersistentModule) -> tuple[StyleGAN2Config, dict[str, torch.Tensor]]:
    """An NVIDIA StyleGAN2 `Generator` record -> (config, state dict) for `facegen.models.stylegan2`."""
    if g.class_name != "Generator" or "synthesis" not in g.modules or "mapping" not in g.modules:
        raise UnsupportedNetworkError(
            f"The network is a {g.class_name}, not a StyleGAN2 Generator. Load the pickle's G_ema generator."
        )
    mapping, synthesis = g.find("mapping"), g.find("synthesis")
    blocks = {resolution: synthesis.find(f"b{resolution}") for resolution in _block_resolutions(g)}
    layers = _synthesis_layers(blocks)
    state = g.state_dict()
    config = StyleGAN2Config(
        z_dim=int(g.attributes["z_dim"]),
        c_dim=int(g.attributes["c_dim"]),
        w_dim=int(g.attributes["w_dim"]),
        img_resolution=int(g.attributes["img_resolution"]),
        img_channels=int(g.attributes["img_channels"]),
        mapping_layers=int(mapping.attributes["num_layers"]),
        mapping_lr_multiplier=_mapping_lr_multiplier(mapping),
        embed_features=_embed_features(mapping),
        layer_features=_layer_features(mapping),
        **_channel_base_and_max(blocks),
        conv_clamp=_single_value("conv_clamp", _attribute_by_layer(layers, "conv_clamp")),
        architecture=_single_value("architecture", _attribute_by_layer(blocks, "architecture")),
        resample_filter=_resample_taps(state),
        use_noise=_single_value("use_noise", _attribute_by_layer(layers, "use_noise")),
        # NVIDIA runs the top num_fp16_res resolutions (but never 4x4) in float16 on CUDA.
        num_fp16_res=sum(bool(block.attributes["use_fp16"]) for block in blocks.values()),
    )
    _check_layers(layers)
    _check_fully_connected_gains(mapping, layers, config)
    if config.num_ws != g.attributes["num_ws"]:
        raise UnsupportedNetworkError(
            f"The generator has {g.attributes['num_ws']} ws where a StyleGAN2 of this size has {config.num_ws}; "
            "it is not a StyleGAN2 network facegen can rebuild."
        )
    weights = {name: tensor.float() for name, tensor in state.items() if name.rsplit(".", 1)[-1] != FILTER_BUFFER}
    return config, weights


def _block_resolutions(g: PersistentModule) -> list[int]:
    resolution_log2 = int(math.log2(int(g.attributes["img_resolution"])))
    return [2**i for i in range(2, resolution_log2 + 1)]


def _synthesis_layers(blocks: dict[int, PersistentModule]) -> dict[str, PersistentModule]:
    layers = {}
    for resolution, block in blocks.items():
        for name in ("conv0", "conv1", "torgb"):
            if block.modules.get(name) is not None:
                layers[f"synthesis.b{resolution}.{name}"] = block.find(name)
    return layers


def _attribute_by_layer(modules: dict[object, PersistentModule], attribute: str) -> dict[str, object]:
    """{module name: value} for the modules that record the attribute (ToRGB layers have no use_noise)."""
    recorded = {name: module for name, module in modules.items() if attribute in module.attributes}
    return {str(name): module.attributes[attribute] for name, module in recorded.items()}


def _mapping_lr_multiplier(mapping: PersistentModule) -> float:
    """NVIDIA's fully connected layers scale their bias by exactly the lr multiplier."""
    layers = {f"fc{i}": mapping.find(f"fc{i}") for i in range(mapping.attributes["num_layers"])}
    return float(_single_value("mapping lr_multiplier", _attribute_by_layer(layers, "bias_gain")))


def _embed_features(mapping: PersistentModule) -> int | None:
    embed = mapping.modules.get("embed")
    return None if embed is None else int(embed.parameters["weight"].shape[0])


def _layer_features(mapping: PersistentModule) -> int | None:
    if mapping.attributes["num_layers"] < 2:
        return None
    return int(mapping.find("fc0").parameters["weight"].shape[0])


def _channel_base_and_max(blocks: dict[int, PersistentModule]) -> dict[str, int]:
    """The smallest channel_base (and channel_max) for which min(channel_base // R, channel_max) reproduces every
    block's width; the stored kwargs are not trusted because their defaults live in NVIDIA's source."""
    channels = {resolution: block.find("conv1").parameters["weight"].shape[0] for resolution, block in blocks.items()}
    channel_max = max(channels.values())
    # Below channel_max, width = channel_base // R bounds channel_base to [R * width, R * (width + 1) - 1].
    lowest = max(resolution * width for resolution, width in channels.items())
    if any(min(lowest // resolution, channel_max) != width for resolution, width in channels.items()):
        raise UnsupportedNetworkError(
            f"The channel widths per resolution {channels} do not follow min(channel_base // R, channel_max); "
            "facegen cannot rebuild this network."
        )
    return {"channel_base": lowest, "channel_max": channel_max}


def _resample_taps(state: dict[str, torch.Tensor]) -> tuple[float, ...]:
    filters = [tensor for name, tensor in state.items() if name.rsplit(".", 1)[-1] == FILTER_BUFFER]
    filter_2d = filters[0].double()
    taps = filter_2d.sum(dim=1)  # NVIDIA's 2-D filter is outer(f, f) / sum(f)², so its row sums are f / sum(f)
    separable = torch.outer(taps, taps)
    if any(not torch.allclose(other.double(), separable, atol=1e-7) for other in filters):
        raise UnsupportedNetworkError(
            "The network's resampling filters differ between layers or are not separable; facegen cannot rebuild it."
        )
    return tuple(taps.tolist())


def _single_value(what: str, values_by_layer: dict[str, object]):
    distinct = set(values_by_layer.values())
    if len(distinct) != 1:
        raise UnsupportedNetworkError(
            f"The network uses different {what} values across its layers ({values_by_layer}); facegen's StyleGAN2 "
            "uses one value for all of them."
        )
    return distinct.pop()


def _check_layers(layers: dict[str, PersistentModule]) -> None:
    """Reject variants whose math differs from facegen's: other kernel sizes or activations."""
    for name, layer in layers.items():
        is_torgb = name.endswith("torgb")
        kernel = layer.parameters["weight"].shape[-1]
        activation = layer.attributes.get("activation", "linear")  # ToRGB layers record none: they are linear
        if (kernel, activation) != ((1, "linear") if is_torgb else (3, "lrelu")):
            raise UnsupportedNetworkError(
                f"{name} has a {kernel}x{kernel} kernel and {activation} activation; facegen's StyleGAN2 supports "
                "the paper's 3x3 leaky-ReLU convolutions and 1x1 linear ToRGB."
            )


def _check_fully_connected_gains(
    mapping: PersistentModule, layers: dict[str, PersistentModule], config: StyleGAN2Config
) -> None:
    """Every fully connected layer must scale like facegen's: the mapping layers by the mapping lr multiplier,
    the label embedding and the style affines by 1."""
    lr_multiplier = config.mapping_lr_multiplier
    expected = {f"mapping.fc{i}": (mapping.find(f"fc{i}"), lr_multiplier) for i in range(config.mapping_layers)}
    if config.c_dim:
        expected["mapping.embed"] = (mapping.find("embed"), 1.0)
    expected |= {f"{name}.affine": (layer.find("affine"), 1.0) for name, layer in layers.items()}
    for name, (module, lr_multiplier) in expected.items():
        expected_weight_gain = lr_multiplier / math.sqrt(module.parameters["weight"].shape[1])
        weight_gain, bias_gain = float(module.attributes["weight_gain"]), float(module.attributes["bias_gain"])
        if not (math.isclose(bias_gain, lr_multiplier) and math.isclose(weight_gain, expected_weight_gain)):
            raise UnsupportedNetworkError(
                f"{name} scales its weights by {weight_gain} and bias by {bias_gain}, where facegen's StyleGAN2 "
                f"expects {expected_weight_gain} and {lr_multiplier}; facegen cannot rebuild it."
            )
