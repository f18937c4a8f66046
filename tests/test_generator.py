import numpy as np
import pytest
import torch

from facegen.errors import FacegenError
from facegen.generator import Generator, ModelInfo, images_to_uint8, latents_for_seeds
from facegen.models.dcgan import DCGANConfig, DCGANGenerator


def tiny_generator(c_dim: int = 0, attributes: bool = False) -> Generator:
    torch.manual_seed(0)
    network = DCGANGenerator(DCGANConfig(z_dim=8, generator_channels=4, resolution=32))
    info = ModelInfo("tiny", "dcgan", z_dim=8, resolution=32, c_dim=c_dim, labels_are_attributes=attributes)
    return Generator(network, info)


def test_seed_latents_follow_nvidia_gen_images_convention():
    expected = np.random.RandomState(42).randn(1, 512)
    assert np.allclose(latents_for_seeds([42], 512)[0], expected[0].astype(np.float32))


def test_uint8_conversion_rounds_like_gen_images():
    images = torch.tensor([-1.5, -1.0, 0.0, 0.999, 1.0]).view(1, 1, 1, 5).expand(1, 3, 1, 5)
    pixels = images_to_uint8(images)
    assert pixels.shape == (1, 1, 5, 3)
    assert pixels[0, 0, :, 0].tolist() == [0, 0, 128, 255, 255]


def test_same_seed_same_pixels_at_every_batch_size():
    generator = tiny_generator()
    reference = generator.sample(seeds=range(10), batch_size=10)
    for batch_size in (1, 3, 16):
        assert np.array_equal(generator.sample(seeds=range(10), batch_size=batch_size), reference)
    assert np.array_equal(generator.sample(seeds=[7])[0], reference[7])


def test_truncation_zero_gives_one_face_for_every_seed():
    images = tiny_generator().sample(seeds=[1, 2, 3], truncation_psi=0.0)
    assert np.array_equal(images[0], images[1]) and np.array_equal(images[1], images[2])


@pytest.mark.parametrize("psi", [-0.1, 2.01])
def test_psi_outside_range_is_refused(psi):
    with pytest.raises(FacegenError, match=r"outside \[0.0, 2.0\]"):
        tiny_generator().sample(seeds=[0], truncation_psi=psi)


def test_labels_on_unconditional_model_are_refused():
    with pytest.raises(FacegenError, match="unconditional"):
        tiny_generator().sample(seeds=[0], labels=3)


def test_class_index_becomes_one_hot_and_is_range_checked():
    generator = tiny_generator(c_dim=4)
    assert generator.label_matrix(2, 3).tolist() == [[0, 0, 1, 0]] * 3
    with pytest.raises(FacegenError, match="out of range"):
        generator.label_matrix(4, 1)
    with pytest.raises(FacegenError, match="class index"):
        generator.label_matrix(None, 1)


def test_attribute_models_default_to_no_attributes():
    assert tiny_generator(c_dim=3, attributes=True).label_matrix(None, 2).tolist() == [[0, 0, 0]] * 2


def test_models_without_w_space_say_so():
    with pytest.raises(FacegenError, match="no W space"):
        tiny_generator().map_to_w(latents_for_seeds([0], 8))
