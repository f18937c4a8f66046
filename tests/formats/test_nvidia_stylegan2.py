"""Converting NVIDIA StyleGAN2 generators: settings come from the networks' resolved attributes and tensor shapes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from facegen.errors import FacegenError
from facegen.formats.nvidia_pickle import PersistentModule, read_network_pickle
from facegen.formats.nvidia_stylegan2 import convert_stylegan2
from facegen.models.stylegan2 import StyleGAN2Generator

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvidia"


def fixture_generator(name: str) -> PersistentModule:
    return read_network_pickle(FIXTURES / f"{name}.pkl")["G_ema"]


def synthesis_layers(g: PersistentModule) -> list[PersistentModule]:
    return [module for _, module in g.named_modules() if module.class_name in ("SynthesisLayer", "ToRGBLayer")]


@pytest.mark.parametrize("name", ["sg2", "ada"])
def test_settings_match_what_nvidias_code_was_given(name):
    recorded = json.loads((FIXTURES / f"{name}.json").read_text())
    kwargs = recorded["G_kwargs"] | recorded["G_kwargs"].get("synthesis_kwargs", {})  # ADA nests them
    g = fixture_generator(name)
    config, weights = convert_stylegan2(g)
    assert (config.z_dim, config.w_dim, config.c_dim) == (recorded["z_dim"], recorded["w_dim"], 0)
    assert config.img_resolution == recorded["common_kwargs"]["img_resolution"]
    assert config.mapping_layers == kwargs["mapping_kwargs"]["num_layers"]
    assert config.mapping_lr_multiplier == pytest.approx(0.01)
    assert config.conv_clamp == kwargs.get("conv_clamp", 256)  # both training scripts default to 256
    assert config.architecture == "skip" and config.resample_filter == pytest.approx((1 / 8, 3 / 8, 3 / 8, 1 / 8))
    for resolution in config.block_resolutions:
        assert config.channels(resolution) == min(kwargs["channel_base"] // resolution, kwargs["channel_max"])
        assert config.uses_fp16(resolution) == g.find(f"synthesis.b{resolution}").attributes["use_fp16"]
    assert config.num_ws == recorded["num_ws"]
    network = StyleGAN2Generator(config)
    network.load_state_dict(weights, strict=True)
    assert torch.equal(network.mapping.w_avg, g.find("mapping").buffers["w_avg"])


def test_settings_come_from_attributes_not_defaults():
    g = copy.deepcopy(fixture_generator("sg2"))
    for layer in synthesis_layers(g):
        layer.attributes["conv_clamp"] = None
    for index in range(4):
        fc = g.find(f"mapping.fc{index}")
        fc.attributes["bias_gain"] = 0.1
        fc.attributes["weight_gain"] = 0.1 / fc.parameters["weight"].shape[1] ** 0.5
    config, _ = convert_stylegan2(g)
    assert config.conv_clamp is None
    assert config.mapping_lr_multiplier == pytest.approx(0.1)


def test_a_conditional_network_gets_its_label_embedding():
    g = copy.deepcopy(fixture_generator("sg2"))
    mapping, fc0 = g.find("mapping"), g.find("mapping.fc0")
    c_dim, embed_features, z_dim = 7, 32, g.attributes["z_dim"]
    embed = copy.deepcopy(fc0)
    embed.attributes |= {"activation": "linear", "weight_gain": c_dim**-0.5, "bias_gain": 1}
    embed.parameters = {"weight": torch.randn(embed_features, c_dim), "bias": torch.zeros(embed_features)}
    mapping.modules["embed"] = embed
    fc0.parameters["weight"] = torch.randn(fc0.parameters["weight"].shape[0], z_dim + embed_features)
    fc0.attributes["weight_gain"] = 0.01 / (z_dim + embed_features) ** 0.5
    g.attributes["c_dim"] = mapping.attributes["c_dim"] = c_dim
    config, weights = convert_stylegan2(g)
    assert (config.c_dim, config.embed_features) == (c_dim, embed_features)
    StyleGAN2Generator(config).load_state_dict(weights, strict=True)


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda g: synthesis_layers(g)[3].attributes.update(conv_clamp=128), "conv_clamp"),
        (lambda g: g.find("synthesis.b16").attributes.update(architecture="resnet"), "architecture"),
        (lambda g: g.find("synthesis.b8.conv1").attributes.update(activation="relu"), "activation"),
        (lambda g: g.find("mapping.fc2").attributes.update(bias_gain=1), "lr_multiplier"),
        (lambda g: g.find("synthesis.b8").buffers.update(resample_filter=torch.eye(4) / 4), "filter"),
        (lambda g: g.find("synthesis.b4.conv1.affine").attributes.update(weight_gain=1.0), "scales its weights"),
    ],
)
def test_networks_facegen_cannot_rebuild_are_refused_with_a_reason(change, problem):
    g = copy.deepcopy(fixture_generator("sg2"))
    change(g)
    with pytest.raises(FacegenError, match=problem):
        convert_stylegan2(g)


def test_a_discriminator_is_not_a_generator():
    d = read_network_pickle(FIXTURES / "sg2.pkl")["D"]
    with pytest.raises(FacegenError, match="G_ema"):
        convert_stylegan2(d)
