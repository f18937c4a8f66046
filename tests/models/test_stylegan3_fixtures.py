"""facegen's StyleGAN3 against NVIDIA's own outputs for the same pickles (tests/fixtures/nvidia/sg3{t,r}.*).

The pickles are small random-weight networks in NVIDIA's exact file format; the .npz files hold what NVIDIA's
code computed from them on the CPU in float32 (see tests/fixtures/nvidia/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facegen.formats.checkpoint import load_generator, save_generator
from facegen.formats.nvidia_pickle import load_nvidia_generator, read_network_pickle
from facegen.formats.nvidia_stylegan3 import convert_stylegan3
from facegen.models import build_generator
from facegen.models.stylegan3 import StyleGAN3Config

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nvidia"
NAMES = ["sg3t", "sg3r"]


def assert_close_to_reference(ours: torch.Tensor, reference: np.ndarray) -> None:
    """The fixtures' README tolerance: max|ours - ref| <= 1e-4 * max(1, max|ref|)."""
    reference = torch.as_tensor(reference)
    assert ours.shape == reference.shape
    error = (ours - reference).abs().max().item()
    assert error <= 1e-4 * max(1.0, reference.abs().max().item()), f"max |difference| {error}"


@pytest.fixture(scope="module", params=NAMES)
def fixture(request):
    name = request.param
    g = read_network_pickle(FIXTURES / f"{name}.pkl")["G_ema"]
    config, state_dict = convert_stylegan3(g)
    network = build_generator("stylegan3", config).eval()
    network.load_state_dict(state_dict)
    return name, g, config, network, np.load(FIXTURES / f"{name}.npz")


def test_ws_match_nvidia_for_every_seed_and_psi(fixture):
    _, _, _, network, reference = fixture
    z = torch.as_tensor(reference["z"], dtype=torch.float32)
    with torch.inference_mode():
        for psi_index, psi in enumerate(reference["psis"]):
            assert_close_to_reference(network.mapping(z, None, float(psi)), reference["ws"][:, psi_index])


def test_images_match_nvidia_for_every_seed_and_psi(fixture):
    _, _, _, network, reference = fixture
    z = torch.as_tensor(reference["z"], dtype=torch.float32)
    with torch.inference_mode():
        for psi_index, psi in enumerate(reference["psis"]):
            assert_close_to_reference(network(z, None, float(psi), "const"), reference["img"][:, psi_index])
        # StyleGAN3 has no noise inputs, so noise mode 'none' renders the same images.
        assert_close_to_reference(network(z, None, 1.0, "none"), reference["img_noise_none"])


def test_synthesis_of_nvidia_ws_matches_nvidia_images(fixture):
    _, _, _, network, reference = fixture
    with torch.inference_mode():
        for psi_index in range(len(reference["psis"])):
            ws = torch.as_tensor(reference["ws"][:, psi_index])
            assert_close_to_reference(network.synthesis(ws, "const"), reference["img"][:, psi_index])


def test_generator_sample_reproduces_nvidia_uint8_images(fixture):
    name, _, _, _, reference = fixture
    generator = load_nvidia_generator(FIXTURES / f"{name}.pkl")
    seeds = [int(seed) for seed in reference["seeds"]]
    for psi_index, psi in enumerate(reference["psis"]):
        pixels = generator.sample(seeds=seeds, truncation_psi=float(psi))
        assert pixels.shape == reference["img_uint8"][:, psi_index].shape
        assert np.abs(pixels.astype(np.int16) - reference["img_uint8"][:, psi_index]).max() <= 1
    pixels = generator.sample(seeds=seeds, truncation_psi=1.0, noise_mode="none")
    assert np.abs(pixels.astype(np.int16) - reference["img_noise_none_uint8"]).max() <= 1


def test_schedule_from_hyperparameters_reproduces_nvidia_geometry_and_filters(fixture):
    """A config built from the constructor's settings alone derives the same layers and designs the same filters
    as NVIDIA's network stored, so random networks built from configs are faithful StyleGAN3s."""
    name, g, converted, _, _ = fixture
    settings = json.loads((FIXTURES / f"{name}.json").read_text())
    kwargs, common = settings["G_kwargs"], settings["common_kwargs"]
    config = StyleGAN3Config(
        z_dim=kwargs["z_dim"],
        w_dim=kwargs["w_dim"],
        resolution=common["img_resolution"],
        mapping_layers=kwargs["mapping_kwargs"]["num_layers"],
        channel_base=kwargs["channel_base"],
        channel_max=kwargs["channel_max"],
        conv_kernel=kwargs.get("conv_kernel", 3),
        use_radial_filters=kwargs.get("use_radial_filters", False),
    )
    assert config.layers == converted.layers
    assert config.input_geometry == converted.input_geometry
    designed = build_generator("stylegan3", config).state_dict()
    stored = g.state_dict()
    filters = [key for key in stored if key.endswith("_filter")]
    assert filters and any(stored[key].ndim == 2 for key in filters) == (name == "sg3r")
    for key in filters:
        torch.testing.assert_close(designed[key], stored[key], rtol=0, atol=1e-6)


def test_converted_network_round_trips_through_our_checkpoint_format(fixture, tmp_path):
    name, _, config, network, reference = fixture
    path = save_generator(tmp_path / f"{name}.safetensors", network, "stylegan3", config, {"z_dim": config.z_dim})
    z = torch.as_tensor(reference["z"], dtype=torch.float32)
    with torch.inference_mode():
        expected = network(z, None, 0.5)
    assert torch.equal(load_generator(path).render(z, truncation_psi=0.5), expected)
