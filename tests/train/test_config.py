"""A config per architecture: each run's config holds the run settings and its architecture's, nothing else."""

import json

import pytest

from facegen.errors import FacegenError
from facegen.train import runs
from facegen.train.config import ConfigError, resolve_config, resolve_run_config
from facegen.train.loop import resume_run, start_run
from tests.conftest import REPO_ROOT

TINY = dict(resolution=32, generator_channels=4, discriminator_channels=4, z_dim=8, batch=8)
# what every run's config.json held before each architecture had its own settings
FLAT_CONFIG_EXTRAS = dict(fmap_base=8192, fmap_max=512, start_resolution=None, phase_steps=None, n_critic=1,
                          gp_weight=10.0, drift_weight=0.001)  # fmt: skip


@pytest.fixture
def one_step_run(face_folder, tmp_path, single_thread):
    config = resolve_config(
        dict(arch="dcgan", data=str(face_folder), steps=1, out=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"),
             **TINY)
    )  # fmt: skip
    return start_run(config, config.out, progress=False).run_dir


def test_each_architecture_has_its_own_settings_and_defaults():
    dcgan = resolve_config(dict(arch="dcgan", data="faces/", steps=5))
    progan = resolve_config(dict(arch="progan", data="faces/", steps=5, resolution=8))
    wgan = resolve_config(dict(arch="wgan-gp", data="faces/", steps=5))
    assert not hasattr(dcgan, "fmap_base") and not hasattr(dcgan, "n_critic")
    assert not hasattr(progan, "generator_channels")
    assert (progan.start_resolution, progan.ema_decay, wgan.n_critic, wgan.gp_weight) == (8, 0.999, 5, 10.0)
    with pytest.raises(ConfigError, match="Unknown setting\\(s\\) fmap_base, n_critic for dcgan. Its settings: arch, "):
        resolve_config(dict(arch="dcgan", data="faces/", steps=5, fmap_base=4096, n_critic=2))
    with pytest.raises(ConfigError, match="runs pretrained stylegan2 networks but does not train them"):
        resolve_config(dict(arch="stylegan2", data="faces/", steps=5))


def test_a_run_writes_only_its_architectures_settings(one_step_run):
    stored = runs.read_config(one_step_run)
    assert stored["generator_channels"] == 4 and not set(FLAT_CONFIG_EXTRAS) & set(stored)


def test_an_unknown_key_in_a_resumed_config_json_is_named_with_the_known_ones(one_step_run):
    config_path = one_step_run / runs.CONFIG_FILE
    config_path.write_text(json.dumps(dict(json.loads(config_path.read_text()), learning_rate=0.1)))
    with pytest.raises(FacegenError, match="config.json: Unknown setting\\(s\\) learning_rate for dcgan. Its settings: .*lr"):
        resume_run(one_step_run, steps=2, progress=False)


def test_a_run_from_before_per_architecture_configs_resumes(one_step_run):
    config_path = one_step_run / runs.CONFIG_FILE
    config_path.write_text(json.dumps(dict(json.loads(config_path.read_text()), **FLAT_CONFIG_EXTRAS), indent=2))
    assert resume_run(one_step_run, steps=2, progress=False).step == 2
    assert not set(FLAT_CONFIG_EXTRAS) & set(runs.read_config(one_step_run)), "rewritten with the new settings only"


def test_the_shipped_starter_config_still_resolves():
    config = resolve_run_config(runs.read_config(REPO_ROOT / "runs" / "starter"))
    assert (config.arch, config.generator_channels, config.resolution) == ("dcgan", 32, 64)
