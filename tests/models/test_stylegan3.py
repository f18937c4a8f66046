"""facegen's StyleGAN3 on random networks: any resolution and width, T and R, conditional; truncation;
determinism; the fast filtered nonlinearity against a slow textbook one; our checkpoint format."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from facegen.formats.checkpoint import load_generator, save_generator
from facegen.models import config_from_dict, stylegan3
from facegen.models.stylegan3 import StyleGAN3Config, StyleGAN3Generator, filtered_lrelu


def tiny_config(**overrides) -> StyleGAN3Config:
    settings = dict(z_dim=16, w_dim=16, resolution=16, channel_base=128, channel_max=8, mapping_layers=2)
    return StyleGAN3Config(**(settings | overrides))


def tiny_network(**overrides) -> StyleGAN3Generator:
    torch.manual_seed(0)
    return StyleGAN3Generator(tiny_config(**overrides)).eval()


def random_weights(network: StyleGAN3Generator, seed: int = 1) -> StyleGAN3Generator:
    """Randomise what training would have changed (biases, w_avg, magnitudes, the input's affine) so tests see
    every term of the forward pass."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            if name.endswith("bias") or name.endswith("w_avg") or name.endswith("input.affine.weight"):
                tensor.add_(torch.randn(tensor.shape, generator=generator) * 0.1)
            elif name.endswith("magnitude_ema"):
                tensor.uniform_(0.5, 2.0, generator=generator)
    return network


VARIANTS = {
    "T 16px": dict(),
    "R 16px": dict(conv_kernel=1, use_radial_filters=True, channel_base=256, channel_max=16),
    "T 64px, 3 mapping layers": dict(resolution=64, mapping_layers=3, channel_max=4),
    "R 64px, conditional": dict(resolution=64, conv_kernel=1, use_radial_filters=True, c_dim=4, channel_max=4),
    "T 32px, one channel, wide w": dict(resolution=32, image_channels=1, w_dim=24, z_dim=8, channel_max=6),
}


@pytest.mark.parametrize("overrides", VARIANTS.values(), ids=VARIANTS.keys())
def test_random_networks_of_any_geometry_render_the_configured_shape(overrides):
    network = random_weights(tiny_network(**overrides))
    config = network.config
    z = torch.randn(2, config.z_dim)
    c = torch.eye(config.c_dim)[[0, 3]] if config.c_dim else None
    with torch.inference_mode():
        ws = network.mapping(z, c, 0.7)
        images = network.synthesis(ws, "const")
    assert ws.shape == (2, config.num_ws, config.w_dim) == (2, 16, config.w_dim)
    assert images.shape == (2, config.image_channels, config.resolution, config.resolution)
    assert images.is_contiguous() and images.dtype == torch.float32
    assert torch.isfinite(images).all() and images.std() > 0
    assert [layer.name for layer in config.layers][-1] == f"L14_{config.resolution}_{config.image_channels}"
    assert config.layers[0].in_channels == config.input_geometry.channels


def test_radial_config_has_2d_down_filters_except_in_critical_layers():
    network = tiny_network(conv_kernel=1, use_radial_filters=True)
    state = network.state_dict()
    ranks = [state[f"synthesis.{layer.name}.down_filter"].ndim for layer in network.config.layers[:-1]]
    assert ranks == [2] * 12 + [1] * 2
    assert network.synthesis.L0_36_8.weight.shape[-1] == 1
    assert "synthesis.L14_16_3.down_filter" not in state  # ToRGB has no filters


def test_conditional_network_uses_its_label_and_requires_one():
    network = random_weights(tiny_network(c_dim=4))
    z = torch.randn(1, 16).repeat(2, 1)
    with torch.inference_mode():
        images = network(z, torch.eye(4)[[0, 1]])
        assert (images[0] - images[1]).abs().max() > 1e-3
        with pytest.raises(ValueError, match="conditional"):
            network(z, None)


def test_truncation_pulls_ws_towards_the_average_up_to_the_cutoff():
    network = random_weights(tiny_network())
    w_avg = network.mapping.w_avg
    z = torch.randn(3, 16)
    with torch.inference_mode():
        free = network.mapping(z, None, 1.0)
        assert torch.allclose(network.mapping(z, None, 0.0), w_avg.expand_as(free))
        half = network.mapping(z, None, 0.5)
        assert torch.allclose(half, w_avg + 0.5 * (free - w_avg), atol=1e-6)
        cut = network.mapping(z, None, 0.5, truncation_cutoff=4)
        assert torch.allclose(cut[:, :4], half[:, :4]) and torch.equal(cut[:, 4:], free[:, 4:])
        assert not torch.allclose(network(z, None, 0.5), network(z, None, 1.0))


def test_same_latent_gives_the_same_image_every_call_and_at_any_batch_size():
    network = random_weights(tiny_network(resolution=32))
    z = torch.randn(3, 16)
    with torch.inference_mode():
        first = network(z, None, 0.8)
        assert torch.equal(first, network(z, None, 0.8))
        one_by_one = torch.cat([network(z[index : index + 1], None, 0.8) for index in range(3)])
    torch.testing.assert_close(one_by_one, first, rtol=0, atol=1e-5)


def test_noise_mode_does_not_change_the_image():
    network = random_weights(tiny_network())
    z = torch.randn(2, 16)
    with torch.inference_mode():
        assert torch.equal(network(z, None, 1.0, "const"), network(z, None, 1.0, "random"))
        assert torch.equal(network(z, None, 1.0, "const"), network(z, None, 1.0, "none"))


# -- the filtered nonlinearity against the textbook definition ----------------------------------------------


def fir_2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """True 2-D convolution, valid part: a sum of shifted copies weighted by the flipped kernel."""
    taps_y, taps_x = kernel.shape
    height, width = x.shape[2] - taps_y + 1, x.shape[3] - taps_x + 1
    flipped = kernel.flip([0, 1])
    out = torch.zeros(*x.shape[:2], height, width, dtype=x.dtype)
    for i in range(taps_y):
        for j in range(taps_x):
            out += flipped[i, j] * x[:, :, i : i + height, j : j + width]
    return out


def as_2d(taps: torch.Tensor | None) -> torch.Tensor:
    if taps is None:
        return torch.ones(1, 1, dtype=torch.float64)
    return torch.outer(taps, taps) if taps.ndim == 1 else taps


def textbook_filtered_lrelu(x, bias, up_filter, down_filter, up, down, padding, gain, slope, clamp):
    x = x + bias[None, :, None, None]
    zero_inserted = torch.zeros(*x.shape[:2], x.shape[2] * up, x.shape[3] * up, dtype=x.dtype)
    zero_inserted[:, :, ::up, ::up] = x
    x_low, x_high, y_low, y_high = padding
    x = F.pad(zero_inserted, [x_low, x_high, y_low, y_high])  # negative amounts crop
    x = fir_2d(x, as_2d(up_filter) * up**2)
    x = torch.where(x >= 0, x, x * slope) * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return fir_2d(x, as_2d(down_filter))[:, :, ::down, ::down]


def lopsided_filter(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor | None:
    if shape[0] == 1:
        return None
    taps = torch.rand(shape, generator=generator, dtype=torch.float64) + 0.1
    return taps / taps.sum()  # unit DC gain, like the real filters


FILTER_CASES = {
    # up, down, up taps, down taps, padding, radial down filter, input size
    "T layer": (2, 2, 12, 12, (9, 8, 9, 8), False, 14),
    "T up x4": (4, 2, 24, 12, (-6, -9, -6, -9), False, 15),
    "R layer": (2, 2, 12, 12, (11, 10, 11, 10), True, 12),
    "critical crop": (2, 2, 12, 12, (-11, -12, -11, -12), False, 28),
    "asymmetric pads": (2, 1, 4, 3, (3, 0, 1, 5), False, 7),
    "pad beyond taps": (3, 3, 5, 6, (9, 7, 2, 8), True, 6),
    "odd taps": (2, 2, 7, 5, (4, 3, 4, 3), False, 9),
    "no up filter": (1, 2, 1, 4, (2, 1, 1, 2), False, 8),
    "ToRGB": (1, 1, 1, 1, (0, 0, 0, 0), False, 8),
}


@pytest.mark.parametrize("strip_rows", [None, 1, 3], ids=["whole", "1-row strips", "3-row strips"])
@pytest.mark.parametrize("case", FILTER_CASES.values(), ids=FILTER_CASES.keys())
def test_fast_filtered_lrelu_equals_textbook_definition(case, strip_rows, monkeypatch):
    if strip_rows is not None:  # the fast path works in strips of output rows; check every strip boundary
        monkeypatch.setattr(stylegan3, "STRIP_BYTES", 1)
        monkeypatch.setattr(stylegan3, "MIN_STRIP_ROWS", strip_rows)
    up, down, up_taps, down_taps, padding, radial, size = case
    generator = torch.Generator().manual_seed(up * 100 + down_taps)
    x = torch.randn(2, 5, size, size + 1, generator=generator, dtype=torch.float64) * 3
    bias = torch.randn(5, generator=generator, dtype=torch.float64)
    # Lopsided filters catch any flip or off-by-one that symmetric ones would hide.
    up_filter = lopsided_filter((up_taps,), generator)
    down_filter = lopsided_filter((down_taps, down_taps) if radial else (down_taps,), generator)
    expected = textbook_filtered_lrelu(x, bias, up_filter, down_filter, up, down, padding, 2**0.5, 0.2, 4.0)
    fast = filtered_lrelu(
        (x + bias[None, :, None, None]).float().contiguous(memory_format=torch.channels_last),
        None if up_filter is None else up_filter.float(),
        None if down_filter is None else down_filter.float(),
        up,
        down,
        padding,
        2**0.5,
        0.2,
        4.0,
    )
    assert fast.shape == expected.shape
    torch.testing.assert_close(fast.double(), expected, rtol=0, atol=1e-5 * expected.abs().max().item())
    unclamped = textbook_filtered_lrelu(x, bias, up_filter, down_filter, up, down, padding, 2**0.5, 0.2, None)
    assert not torch.allclose(unclamped, expected)  # the clamp was exercised


# -- our own checkpoint format ------------------------------------------------------------------------------


def test_config_survives_json_exactly():
    config = tiny_config(conv_kernel=1, use_radial_filters=True, c_dim=3, conv_clamp=None)
    rebuilt = config_from_dict("stylegan3", json.loads(json.dumps(dataclasses.asdict(config))))
    assert rebuilt == config


@pytest.mark.parametrize("overrides", [dict(), dict(conv_kernel=1, use_radial_filters=True, c_dim=4)], ids=["T", "R"])
def test_checkpoint_round_trip_renders_identical_images(tmp_path, overrides):
    network = random_weights(tiny_network(**overrides))
    config = network.config
    info = {"z_dim": config.z_dim, "c_dim": config.c_dim, "resolution": config.resolution, "has_w_space": True}
    path = save_generator(tmp_path / "sg3.safetensors", network, "stylegan3", config, info)
    generator = load_generator(path)
    assert generator.network.config == config
    labels = 2 if config.c_dim else None
    latents = generator.latents_for_seeds([0, 5])
    with torch.inference_mode():
        expected = network(torch.as_tensor(latents), generator.label_matrix(labels, 2), 0.7)
    assert torch.equal(generator.render(latents, labels, 0.7), expected)
