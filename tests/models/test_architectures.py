"""The architecture descriptions: one per model file, found by name, and free of the training layer."""

import subprocess
import sys

from facegen import models
from facegen.models.dcgan import DCGANConfig, DCGANGenerator
from facegen.models.progan_facebook import FacebookProGANConfig, FacebookProGANGenerator
from tests.conftest import REPO_ROOT


def test_every_listed_module_describes_the_architecture_of_its_name():
    for name in models.architecture_names():
        architecture = models.get_architecture(name)
        assert architecture.name == name
        assert architecture.is_trainable == (name in models.TRAINED_ARCHITECTURE_MODULES), name
    assert [architecture.name for architecture in models.trainable_architectures()] == ["dcgan", "wgan-gp", "progan", "cdcgan"]


def test_a_network_is_named_by_the_architecture_checkpoints_record():
    assert models.architecture_of(DCGANGenerator(DCGANConfig(resolution=32))) == "dcgan", "not wgan-gp, which reuses it"
    facebook = FacebookProGANGenerator(FacebookProGANConfig(z_dim=8, resolution=8, fmap_max=8))
    assert models.architecture_of(facebook) == "progan-facebook", "a subclass is not its parent architecture"
    assert models.get_architecture("wgan-gp").checkpoint_architecture == "dcgan"


def test_reading_every_description_imports_no_training_code():
    script = (
        "import sys, facegen.models as m; [m.get_architecture(name) for name in m.architecture_names()]; "
        "print(sorted(name for name in sys.modules if name.startswith('facegen.train')))"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
