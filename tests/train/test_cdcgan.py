"""Attribute-conditioned DCGAN: trained on CelebA-style labels, its checkpoints tell the app to offer toggles."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from facegen.errors import FacegenError
from facegen.formats.checkpoint import load_generator
from facegen.images import read_recipe
from facegen.models.cdcgan import CDCGANConfig, CDCGANGenerator
from facegen.models.dcgan import init_dcgan_weights
from facegen.train import runs
from facegen.train.config import resolve_config
from facegen.train.loop import start_run
from tests.train.conftest import CELEBA_ATTRIBUTES

TINY = dict(resolution=32, generator_channels=4, discriminator_channels=4, z_dim=8, batch=8)


def test_attributes_change_the_generated_face():
    torch.manual_seed(0)
    generator = CDCGANGenerator(CDCGANConfig(z_dim=8, generator_channels=4, resolution=32)).eval()
    generator.apply(init_dcgan_weights)
    z = torch.randn(1, 8)
    plain = torch.zeros(1, 40)
    smiling = plain.clone()
    smiling[0, CELEBA_ATTRIBUTES.index("Smiling")] = 1
    face = generator(z, plain)
    assert torch.equal(face, generator(z, plain.clone()))
    # untrained, every output is tiny: compare the change with the face's own scale
    assert (generator(z, smiling) - face).abs().max() > 0.1 * face.abs().max()


@pytest.fixture(scope="module")
def cdcgan_run(celeba_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cdcgan")
    config = resolve_config(
        dict(arch="cdcgan", data=str(celeba_folder), steps=6, sample_every=6, checkpoint_every=6, out=str(folder / "run"),
             cache_dir=str(folder / "cache"), **TINY)
    )  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return start_run(config, config.out, progress=False)
    finally:
        torch.set_num_threads(threads)


def test_checkpoint_names_the_40_attributes_for_the_sample_page(cdcgan_run):
    weights = runs.find_generator_checkpoint(str(cdcgan_run.run_dir))
    info = json.loads(weights.with_suffix(".json").read_text())["info"]
    assert (info["c_dim"], info["labels_are_attributes"], info["label_names"]) == (40, True, CELEBA_ATTRIBUTES)

    generator = load_generator(weights)
    assert generator.c_dim == 40 and generator.info.labels_are_attributes
    assert generator.info.label_names == tuple(CELEBA_ATTRIBUTES)
    no_attributes = generator.sample(seeds=[3])
    assert np.array_equal(no_attributes, generator.sample(seeds=[3], labels=[0.0] * 40)), "unset toggles are all off"
    with_glasses = [1.0 if name == "Eyeglasses" else 0.0 for name in CELEBA_ATTRIBUTES]
    assert not np.array_equal(no_attributes, generator.sample(seeds=[3], labels=with_glasses))


def test_sample_grids_use_the_datasets_attribute_rows(cdcgan_run):
    recipe = read_recipe(runs.list_sample_grids(cdcgan_run.run_dir)[-1].path)
    labels = np.array(recipe["labels"])
    assert labels.shape == (16, 40) and set(np.unique(labels)) == {0.0, 1.0}
    assert len({tuple(row) for row in labels}) > 1


def test_a_dataset_without_attributes_is_refused_with_the_fix(face_folder, tmp_path):
    config = resolve_config(dict(arch="cdcgan", data=str(face_folder), steps=2, out=str(tmp_path / "run"),
                                 cache_dir=str(tmp_path / "cache"), **TINY))  # fmt: skip
    with pytest.raises(FacegenError, match="cdcgan learns from attribute labels.*or train --arch dcgan"):
        start_run(config, config.out, progress=False)
    status = runs.read_status(tmp_path / "run")
    assert status["state"] == "crashed" and "attribute labels" in status["message"], "the Training page shows why"

    fixed = resolve_config({**dataclasses.asdict(config), "arch": "dcgan", "steps": 1})
    assert start_run(fixed, config.out, progress=False).state == "finished", "a run that never trained is replaced"
