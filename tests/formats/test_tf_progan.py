"""NVIDIA's TensorFlow ProGAN pickle, read as data: small fixtures in the documented layout against a plain
reference forward pass (pixel norm, equalized-lr gains, nearest up-sampling, lod blending, TF layouts)."""

from __future__ import annotations

import math
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facegen import formats, registry
from facegen.errors import CorruptFileError, UnsafePickleError
from facegen.formats.tf_progan import load_tf_progan_generator, read_tf_networks
from facegen.models.progan import pixel_norm
from tests.formats import progan_fixtures as fx

Z = np.random.default_rng(7).standard_normal((3, 8)).astype(np.float32)


def render(generator, z=Z) -> torch.Tensor:
    return generator.render(z)


def upscale_to(image: torch.Tensor, size: int) -> torch.Tensor:
    while image.shape[-1] < size:
        image = fx.nearest_up(image)
    return image


@pytest.mark.parametrize("fused", [False, True], ids=["Conv0", "fused-Conv0_up"])
@pytest.mark.parametrize("condensed", [False, True], ids=["G-D-Gs", "condensed-Gs"])
@pytest.mark.parametrize("protocol", [2, 4])
def test_fixture_renders_what_the_documented_math_gives(tmp_path, fused, condensed, protocol):
    variables = fx.tf_progan_variables(resolution=16, fused=fused)
    path = fx.write_tf_progan(tmp_path / "progan.pkl", variables, condensed=condensed, protocol=protocol)
    generator = load_tf_progan_generator(path, model_id="fixture")
    images = render(generator)
    assert images.shape == (3, 3, 16, 16)
    torch.testing.assert_close(images, fx.tf_progan_reference(variables, Z), rtol=1e-4, atol=1e-4)
    assert generator.info.family == "progan" and generator.info.resolution == 16 and generator.z_dim == 8


@pytest.mark.parametrize(
    "lod, size", [(0.0, 32), (0.25, 32), (1.0, 16), (1.5, 16), (2.0, 8), (2.75, 8), (3.0, 4)]
)
def test_each_lod_renders_its_resolution_and_blends_the_one_below(tmp_path, lod, size):
    variables = fx.tf_progan_variables(resolution=32, fmap_base=128, fmap_max=16, lod=lod, seed=3)
    generator = load_tf_progan_generator(fx.write_tf_progan(tmp_path / "progan.pkl", variables))
    images = render(generator)
    assert images.shape[-2:] == (size, size) and generator.resolution == size
    # NVIDIA's graph always outputs the final size: the coarser image, up-sampled by repetition
    torch.testing.assert_close(upscale_to(images, 32), fx.tf_progan_reference(variables, Z), rtol=1e-4, atol=1e-4)
    faces = generator.sample(seeds=[0, 1])
    assert faces.shape == (2, size, size, 3) and faces.dtype == np.uint8


def test_fused_and_plain_up_sampling_are_the_same_network(tmp_path):
    """Conv0_up's transposed convolution equals up-sampling then Conv0 with the kernel flipped in space."""
    fused = fx.tf_progan_variables(fused=True, seed=5)
    plain = dict(fused)
    for name in [name for name in fused if "/Conv0_up/" in name]:
        value = plain.pop(name)
        if name.endswith("weight"):  # [3, 3, out, in] -> flipped [3, 3, in, out]
            value = np.ascontiguousarray(value[::-1, ::-1].transpose(0, 1, 3, 2))
        plain[name.replace("Conv0_up", "Conv0")] = value
    torch.testing.assert_close(fx.tf_progan_reference(fused, Z), fx.tf_progan_reference(plain, Z), rtol=1e-4, atol=1e-5)
    fused_images = render(load_tf_progan_generator(fx.write_tf_progan(tmp_path / "fused.pkl", fused)))
    plain_images = render(load_tf_progan_generator(fx.write_tf_progan(tmp_path / "plain.pkl", plain)))
    torch.testing.assert_close(fused_images, plain_images, rtol=1e-4, atol=1e-5)


def wrong_dense_gain(variables):
    changed = dict(variables)
    changed["4x4/Dense/weight"] = variables["4x4/Dense/weight"] * 4  # sqrt(2) instead of sqrt(2)/4
    return changed


def wrong_to_rgb_gain(variables):
    return {name: value * math.sqrt(2) if name.startswith("ToRGB") and name.endswith("weight") else value
            for name, value in variables.items()}  # fmt: skip


def transposed_dense(variables):
    changed = dict(variables)
    weight = variables["4x4/Dense/weight"]  # flatten [C, 4, 4] in HWC instead of NCHW order
    changed["4x4/Dense/weight"] = weight.reshape(len(weight), -1, 16).transpose(0, 2, 1).reshape(len(weight), -1)
    return changed


@pytest.mark.parametrize("mistake", [wrong_dense_gain, wrong_to_rgb_gain, transposed_dense])
def test_each_convention_changes_the_image_so_the_reference_pins_it(tmp_path, mistake):
    variables = fx.tf_progan_variables(seed=11)
    images = render(load_tf_progan_generator(fx.write_tf_progan(tmp_path / "progan.pkl", variables)))
    assert (images - fx.tf_progan_reference(mistake(variables), Z)).abs().max() > 1e-2


def test_pixel_norm_puts_every_feature_vector_on_the_unit_sphere():
    generator = torch.Generator().manual_seed(0)
    # feature vectors of very different lengths (but none near zero, where the 1e-8 epsilon would show)
    features = torch.randn(4, 16, 5, 5, generator=generator) * (0.1 + 10 * torch.rand(4, 1, 5, 5, generator=generator))
    normalized = pixel_norm(features)
    torch.testing.assert_close(normalized.square().mean(dim=1), torch.ones(4, 5, 5), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(normalized, fx.pixel_norm(features))


def test_truncation_psi_does_not_change_a_progan_face(tmp_path):
    """The latent is pixel-normalised first, so scaling it (facegen's psi for z-only models) changes nothing."""
    generator = load_tf_progan_generator(fx.write_tf_progan(tmp_path / "progan.pkl", fx.tf_progan_variables()))
    assert np.array_equal(generator.sample(seeds=[4], truncation_psi=0.5), generator.sample(seeds=[4]))


def test_build_module_src_is_never_executed(tmp_path):
    marker = tmp_path / "executed.txt"
    source = f"open({str(marker)!r}, 'w').write('the pickle ran code')\n"
    path = fx.write_tf_progan(tmp_path / "progan.pkl", fx.tf_progan_variables(), build_module_src=source)
    networks = read_tf_networks(path)
    assert set(networks) == {"G", "D", "Gs"} and networks["Gs"].function == "G_paper"
    registry.load_generator(str(path)).sample(seeds=[0])
    assert not marker.exists()


class RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_call_hidden_in_the_settings_is_refused(tmp_path):
    marker = tmp_path / "executed.txt"
    path = fx.write_tf_progan(tmp_path / "progan.pkl", fx.tf_progan_variables(), resolution=RunsCommand(marker))
    with pytest.raises(UnsafePickleError, match=r"progan\.pkl: it refers to posix\.system"):
        load_tf_progan_generator(path)
    assert not marker.exists()


class Fetcher:
    """Any other class of NVIDIA's tfutil module."""


Fetcher.__module__, Fetcher.__qualname__ = "tfutil", "Fetcher"


def test_another_class_of_nvidias_module_is_refused(tmp_path):
    path = tmp_path / "other.pkl"
    with fx.module_named("tfutil", Fetcher=Fetcher):
        path.write_bytes(pickle.dumps(Fetcher(), protocol=4))
    with pytest.raises(UnsafePickleError, match="tfutil.Fetcher"):
        load_tf_progan_generator(path)


def test_truncated_file_says_so(tmp_path):
    path = fx.write_tf_progan(tmp_path / "progan.pkl", fx.tf_progan_variables())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorruptFileError, match="progan.pkl"):
        load_tf_progan_generator(path)


@pytest.mark.parametrize(
    "settings, message",
    [({"use_wscale": False}, "use_wscale=False"), ({"label_size": 10}, "label_size=10")],
)
def test_settings_facegen_does_not_implement_are_refused(tmp_path, settings, message):
    path = fx.write_tf_progan(tmp_path / "progan.pkl", fx.tf_progan_variables(), **settings)
    with pytest.raises(CorruptFileError, match=message):
        load_tf_progan_generator(path)


def test_missing_variable_is_named(tmp_path):
    variables = fx.tf_progan_variables()
    del variables["8x8/Conv1/bias"]
    with pytest.raises(CorruptFileError, match="8x8/Conv1/bias"):
        load_tf_progan_generator(fx.write_tf_progan(tmp_path / "progan.pkl", variables))


def test_weights_path_is_recognised_as_tf_progan(tmp_path):
    path = fx.write_tf_progan(tmp_path / "karras2018iclr-celebahq-tiny.pkl", fx.tf_progan_variables(), condensed=True)
    assert formats.sniff_format(path) == "tf-progan"
    assert registry.load_generator(str(path)).sample(seeds=[0, 1]).shape == (2, 16, 16, 3)


def test_reference_fused_kernel_sum_is_a_transposed_convolution_of_an_up_sampled_input():
    """The reference's own fused path, checked once by brute force on a 1-channel image."""
    x = torch.randn(1, 1, 3, 3)
    kernel = torch.randn(3, 3)
    up_then_conv = F.conv2d(fx.nearest_up(x), kernel.flip(0, 1)[None, None], padding=1)
    padded = F.pad(kernel, (1, 1, 1, 1))
    summed = padded[1:, 1:] + padded[:-1, 1:] + padded[1:, :-1] + padded[:-1, :-1]
    transposed = F.conv_transpose2d(x, summed[None, None], stride=2, padding=1)
    torch.testing.assert_close(transposed, up_then_conv)
