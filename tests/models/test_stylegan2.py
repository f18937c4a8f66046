"""facegen's StyleGAN2 at sizes and settings the NVIDIA fixtures do not cover, and its building blocks against
slow, obviously correct references written from the paper's definitions (explicit loops on tiny tensors)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from facegen.formats.checkpoint import load_generator, save_generator
from facegen.models import build_generator, config_from_dict
from facegen.models.stylegan2 import (
    ResidualSkip,
    StyleGAN2Config,
    StyleGAN2Generator,
    SynthesisLayer,
    ToRGB,
    normalized_filter,
    upsample2d,
)

TINY = dict(z_dim=16, w_dim=16, img_resolution=16, channel_base=128, channel_max=16, mapping_layers=2)
VARIANTS = {
    "16px": {},
    "128px narrow": dict(img_resolution=128, channel_base=256, channel_max=8),
    "wide, deep mapping": dict(channel_base=512, channel_max=32, mapping_layers=8, layer_features=24),
    "orig": dict(architecture="orig"),
    "resnet": dict(architecture="resnet"),
    "no clamp": dict(conv_clamp=None),
    "conditional": dict(c_dim=5, embed_features=12),
    "one mapping layer, grey": dict(mapping_layers=1, img_channels=1),
    "3-tap filter, no noise": dict(resample_filter=(1, 2, 1), use_noise=False),
}


def randomized(config: StyleGAN2Config, seed: int = 0) -> StyleGAN2Generator:
    """A network whose biases, noise strengths and w_avg are random too, so that nothing trivially passes."""
    torch.manual_seed(seed)
    network = StyleGAN2Generator(config).eval()
    with torch.no_grad():
        for name, tensor in network.named_parameters():
            if name.endswith("bias"):
                tensor.add_(torch.randn_like(tensor) * 0.1)
            elif name.endswith("noise_strength"):
                tensor.normal_(0, 0.5)
        network.mapping.w_avg.normal_()
    return network


def inputs(config: StyleGAN2Config, count: int = 2, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(count, config.z_dim, generator=generator)
    if not config.c_dim:
        return z, None
    classes = torch.arange(count) % config.c_dim
    return z, torch.nn.functional.one_hot(classes, config.c_dim).float()


# -- whole networks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", VARIANTS.values(), ids=VARIANTS.keys())
def test_any_configuration_maps_and_renders(overrides):
    config = StyleGAN2Config(**TINY | overrides)
    network = randomized(config)
    z, c = inputs(config, count=3)
    with torch.no_grad():
        ws = network.mapping(z, c)
        images = network(z, c)
    num_ws = 2 * int(math.log2(config.img_resolution)) - 2
    assert ws.shape == (3, num_ws, config.w_dim)
    assert images.shape == (3, config.img_channels, config.img_resolution, config.img_resolution)
    assert images.is_contiguous() and torch.isfinite(images).all()
    assert not torch.allclose(images[0], images[1])


@pytest.mark.parametrize("architecture", ["skip", "orig", "resnet"])
def test_every_w_steers_the_image(architecture):
    """Each of the num_ws ws feeds some layer: changing any one of them changes the image."""
    config = StyleGAN2Config(**TINY | dict(architecture=architecture))
    network = randomized(config)
    with torch.no_grad():
        ws = network.mapping(*inputs(config, count=1))
        reference = network.synthesis(ws)
        for index in range(config.num_ws):
            changed = ws.clone()
            changed[:, index] += 1.0
            assert not torch.allclose(network.synthesis(changed), reference), f"w {index} is unused"


@pytest.mark.parametrize("architecture", ["skip", "orig", "resnet"])
def test_parameter_names_follow_nvidia(architecture):
    config = StyleGAN2Config(**TINY | dict(architecture=architecture, c_dim=3))
    names = set(StyleGAN2Generator(config).state_dict())
    assert {"mapping.fc0.weight", "mapping.fc1.bias", "mapping.embed.weight", "mapping.w_avg"} <= names
    assert {"synthesis.b4.const", "synthesis.b4.conv1.noise_const", "synthesis.b8.conv0.affine.weight"} <= names
    assert ("synthesis.b8.torgb.weight" in names) == (architecture == "skip")
    assert "synthesis.b16.torgb.weight" in names
    assert ("synthesis.b8.skip.weight" in names) == (architecture == "resnet")
    assert not any(name.endswith("resample_filter") for name in names)


def test_truncation_pulls_ws_towards_w_avg():
    config = StyleGAN2Config(**TINY)
    network = randomized(config)
    z, _ = inputs(config, count=2)
    with torch.no_grad():
        free = network.mapping(z)
        assert torch.allclose(network.mapping(z, truncation_psi=0.0), network.mapping.w_avg.expand_as(free))
        w_avg = network.mapping.w_avg
        halfway = network.mapping(z, truncation_psi=0.5)
        assert torch.allclose(halfway, w_avg + 0.5 * (free - w_avg), atol=1e-6)
        cut = network.mapping(z, truncation_psi=0.5, truncation_cutoff=3)
    assert torch.allclose(cut[:, :3], halfway[:, :3])
    assert torch.equal(cut[:, 3:], free[:, 3:])
    assert torch.equal(free[:, 0], free[:, -1]), "without truncation every layer gets the same w"


def test_labels_steer_a_conditional_network():
    config = StyleGAN2Config(**TINY | dict(c_dim=5))
    network = randomized(config)
    z = torch.randn(1, config.z_dim).expand(5, -1)
    classes = torch.eye(5)
    with torch.no_grad():
        images = network(z, classes)
        again = network(z, classes)
        with pytest.raises(ValueError, match="conditional"):
            network(z, None)
    assert torch.equal(images, again)
    for first in range(5):
        for second in range(first + 1, 5):
            assert not torch.allclose(images[first], images[second])


def test_noise_modes():
    config = StyleGAN2Config(**TINY)
    network = randomized(config)
    z, _ = inputs(config)
    with torch.no_grad():
        const, none, random = (network(z, noise_mode=mode) for mode in ("const", "none", "random"))
        assert torch.equal(network(z, noise_mode="const"), const)
        assert torch.equal(network(z, noise_mode="none"), none)
        assert not torch.allclose(network(z, noise_mode="random"), random)
    assert not torch.allclose(const, none)
    assert not torch.allclose(random, const)


def test_an_image_does_not_depend_on_its_batch():
    """A batch runs modulation on activations, a single image on the weight: same images up to float rounding."""
    config = StyleGAN2Config(**TINY | dict(c_dim=3, img_resolution=32))
    network = randomized(config)
    z, c = inputs(config, count=4)
    with torch.no_grad():
        batch = network(z, c)
        alone = torch.cat([network(z[i : i + 1], c[i : i + 1]) for i in range(4)])
    assert torch.allclose(batch, alone, rtol=0, atol=1e-5 * max(1.0, batch.abs().max().item()))


@pytest.mark.parametrize("variant", ["conditional", "no clamp", "3-tap filter, no noise"])
def test_own_checkpoint_round_trip_renders_identical_images(tmp_path, variant):
    config = StyleGAN2Config(**TINY | VARIANTS[variant])
    network = randomized(config)
    info = {"model_id": "tiny", "c_dim": config.c_dim}
    path = save_generator(tmp_path / "tiny.safetensors", network, "stylegan2", config, info)
    generator = load_generator(path)
    assert generator.network.config == config
    z, c = inputs(config, count=3)
    with torch.no_grad():
        expected = network(z, c, 0.7, "const")
    labels = None if c is None else c.numpy()
    assert torch.equal(generator.render(z.numpy(), labels, truncation_psi=0.7), expected)


def test_config_survives_json():
    config = StyleGAN2Config(**TINY | dict(conv_clamp=None, resample_filter=(1, 3, 3, 1), c_dim=2))
    values = dataclasses.asdict(config)
    assert config_from_dict("stylegan2", {**values, "resample_filter": list(config.resample_filter)}) == config
    assert isinstance(build_generator("stylegan2", config), StyleGAN2Generator)


def test_bad_configs_are_refused():
    for overrides in (dict(img_resolution=48), dict(architecture="unet"), dict(mapping_layers=0), dict(z_dim=0)):
        with pytest.raises(ValueError):
            StyleGAN2Config(**TINY | overrides)


# -- building blocks against explicit-loop references -----------------------------------------------------------
# NVIDIA's up-sampling (upfirdn2d): insert a zero after every pixel, zero-pad, then true convolution (flipped
# kernel) with the 2-D filter outer(f, f) / sum(f)² times a gain. Its up-sampling 3x3 convolution is that with
# gain 4 and padding (1 + (taps + 1) // 2, 1 + (taps - 2) // 2), followed by a valid true convolution with the
# kernel; plain 3x3 convolutions are correlations with padding 1.


def zero_insert(planes: np.ndarray) -> np.ndarray:
    channels, height, width = planes.shape
    upsampled = np.zeros((channels, 2 * height, 2 * width))
    for row in range(height):
        for column in range(width):
            upsampled[:, 2 * row, 2 * column] = planes[:, row, column]
    return upsampled


def pad(planes: np.ndarray, before: int, after: int) -> np.ndarray:
    return np.pad(planes, ((0, 0), (before, after), (before, after)))


def true_convolution(plane: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'Valid' 2-D convolution of one plane, kernel flipped, by explicit loops."""
    kernel_height, kernel_width = kernel.shape
    out = np.zeros((plane.shape[0] - kernel_height + 1, plane.shape[1] - kernel_width + 1))
    for row in range(out.shape[0]):
        for column in range(out.shape[1]):
            for a in range(kernel_height):
                for b in range(kernel_width):
                    out[row, column] += plane[row + a, column + b] * kernel[kernel_height - 1 - a, kernel_width - 1 - b]
    return out


def reference_upsample(planes: np.ndarray, taps: tuple[float, ...], before: int, after: int) -> np.ndarray:
    filter_2d = np.outer(taps, taps) / np.sum(taps) ** 2 * 4
    padded = pad(zero_insert(planes), before, after)
    return np.stack([true_convolution(plane, filter_2d) for plane in padded])


def reference_synthesis_layer(
    layer: SynthesisLayer, x: torch.Tensor, w: torch.Tensor, taps: tuple[float, ...]
) -> np.ndarray:
    """The paper's modulated convolution, one sample at a time: w' = w * s, w'' = w' / sqrt(sum w'² + 1e-8)."""
    weight = layer.weight.detach().double().numpy()
    affine_weight = layer.affine.weight.detach().double().numpy()
    styles = w.double().numpy() @ affine_weight.T / math.sqrt(affine_weight.shape[1])
    styles += layer.affine.bias.detach().double().numpy()
    noise = (layer.noise_const * layer.noise_strength).detach().double().numpy()
    bias = layer.bias.detach().double().numpy()
    outputs = []
    for sample, planes in enumerate(x.double().numpy()):
        modulated = weight * styles[sample][None, :, None, None]
        demodulated = modulated / np.sqrt((modulated**2).sum(axis=(1, 2, 3)) + 1e-8)[:, None, None, None]
        if layer.up:
            planes = reference_upsample(planes, taps, 1 + (len(taps) + 1) // 2, 1 + (len(taps) - 2) // 2)
            convolve = true_convolution
        else:
            planes = pad(planes, 1, 1)

            def convolve(plane: np.ndarray, kernel: np.ndarray) -> np.ndarray:
                return true_convolution(plane, kernel[::-1, ::-1])

        out = np.stack(
            [sum(convolve(plane, kernel) for plane, kernel in zip(planes, kernels)) for kernels in demodulated]
        )
        out = out + noise + bias[:, None, None]
        out = np.where(out >= 0, out, 0.2 * out) * math.sqrt(2)
        outputs.append(np.clip(out, -layer.conv_clamp, layer.conv_clamp))
    return np.stack(outputs)


@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 2, 3)])
def test_upsampling_filter_matches_zero_insertion_and_convolution(taps):
    x = torch.randn(2, 3, 3, 4)
    ours = upsample2d(x, normalized_filter(taps))
    for sample in range(2):
        expected = reference_upsample(x[sample].double().numpy(), taps, (len(taps) + 1) // 2, (len(taps) - 2) // 2)
        assert np.allclose(ours[sample].numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 2], ids=["one image", "batch"])
@pytest.mark.parametrize("up", [False, True], ids=["3x3", "up 3x3"])
@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 2, 3)])
def test_modulated_convolution_matches_the_paper(batch, up, taps):
    torch.manual_seed(batch + 2 * up)
    config = StyleGAN2Config(**TINY | dict(w_dim=5, conv_clamp=0.5, resample_filter=taps))
    layer = SynthesisLayer(2, 3, resolution=8 if up else 4, up=up, config=config)
    with torch.no_grad():
        layer.noise_strength.fill_(0.3)
        layer.bias.normal_()
        x, w = torch.randn(batch, 2, 4, 4), torch.randn(batch, 5)
        ours = layer(x.contiguous(memory_format=torch.channels_last), w, "const")
    expected = reference_synthesis_layer(layer, x, w, taps)
    assert ours.shape == expected.shape
    assert np.allclose(ours.numpy(), expected, atol=1e-5 * max(1.0, np.abs(expected).max()))
    clamped = np.abs(expected) == 0.5
    assert clamped.any() and not clamped.all(), "the clamp was exercised"


def test_to_rgb_is_a_modulated_1x1_convolution_without_demodulation():
    config = StyleGAN2Config(**TINY | dict(w_dim=5, conv_clamp=0.8))
    layer = ToRGB(4, config)
    with torch.no_grad():
        layer.bias.normal_()
        x, w = torch.randn(2, 4, 3, 3), torch.randn(2, 5)
        ours = layer(x.contiguous(memory_format=torch.channels_last), w)
        styles = layer.affine(w) / 2  # 1 / sqrt(in_channels)
        expected = torch.zeros(2, config.img_channels, 3, 3)
        for sample in range(2):
            for out_channel in range(config.img_channels):
                for in_channel in range(4):
                    weight = layer.weight[out_channel, in_channel, 0, 0] * styles[sample, in_channel]
                    expected[sample, out_channel] += weight * x[sample, in_channel]
                expected[sample, out_channel] += layer.bias[out_channel]
    assert torch.allclose(ours, expected.clamp(-0.8, 0.8), atol=1e-6)


def test_residual_shortcut_is_upsampling_and_a_scaled_1x1_convolution():
    config = StyleGAN2Config(**TINY)
    shortcut = ResidualSkip(3, 2, config)
    x = torch.randn(1, 3, 4, 4)
    with torch.no_grad():
        ours = shortcut(x, gain=0.5)
    upsampled = reference_upsample(x[0].double().numpy(), config.resample_filter, 2, 1)
    weight = shortcut.weight[:, :, 0, 0].detach().double().numpy() / math.sqrt(3) * 0.5
    expected = np.einsum("oi,ihw->ohw", weight, upsampled)
    assert np.allclose(ours[0].numpy(), expected, atol=1e-5)
