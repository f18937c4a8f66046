"""The test fixtures themselves: the tiny model is what its script makes, and it draws what the tests rely on."""

from tests.conftest import TINY_DCGAN_PATH
from tests.fixtures.make_tiny_dcgan import make_tiny_dcgan


def test_the_tiny_dcgan_is_what_its_script_makes(tmp_path):
    remade = make_tiny_dcgan(tmp_path / "tiny-dcgan64.safetensors")
    assert remade.read_bytes() == TINY_DCGAN_PATH.read_bytes()
    assert remade.with_suffix(".json").read_text() == TINY_DCGAN_PATH.with_suffix(".json").read_text()


def test_the_tiny_dcgan_draws_distinct_pictures_with_contrast(tiny_model):
    pictures = tiny_model.sample(seeds=range(16))
    assert pictures.shape == (16, 64, 64, 3) and tiny_model.z_dim == 100
    assert all(picture.std() > 20 for picture in pictures)
    assert len({picture.tobytes() for picture in pictures}) == 16
