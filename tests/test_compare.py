"""Models side by side on the same seeds: shared latents where sizes match, one display size, and FID/KID rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from facegen.compare import compare_models, display_size, evaluate_models, quality_table
from facegen.errors import FacegenError
from facegen.generator import Generator, ModelInfo, latents_for_seeds
from facegen.models.dcgan import DCGANConfig, DCGANGenerator
from tests.feature_stand_in import stand_in_features


def tiny_dcgan(name: str, z_dim: int, resolution: int, init_seed: int) -> Generator:
    torch.manual_seed(init_seed)
    network = DCGANGenerator(DCGANConfig(z_dim=z_dim, generator_channels=4, resolution=resolution))
    return Generator(network, ModelInfo(name, "dcgan", z_dim=z_dim, resolution=resolution))


def test_models_of_one_latent_size_are_given_the_same_latents():
    first, second = tiny_dcgan("a", 8, 32, 0), tiny_dcgan("b", 8, 32, 1)
    seen = []
    for generator in (first, second):
        generator.network.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].clone()))
    comparison = compare_models([first, second], [3, 9, 27])
    assert len(seen) == 2 and torch.equal(seen[0], seen[1])
    assert torch.equal(seen[0], torch.from_numpy(latents_for_seeds([3, 9, 27], 8)))
    assert "same latents" in comparison.latent_note() and "z_dim 8" in comparison.latent_note()
    assert comparison.latent_groups() == {8: ["a", "b"]}


def test_faces_are_the_models_own_faces_for_those_seeds_at_one_display_size():
    small, large = tiny_dcgan("small", 8, 32, 0), tiny_dcgan("large", 8, 64, 1)
    comparison = compare_models([small, large], [0, 1], size=64, resample="nearest")
    assert comparison.display_size == 64
    small_row, large_row = comparison.rows
    assert small_row.images.shape == large_row.images.shape == (2, 64, 64, 3)
    assert np.array_equal(large_row.images, large.sample(seeds=[0, 1]))
    # nearest doubling of a 32 px face: each pixel becomes a 2x2 block
    assert np.array_equal(small_row.images[:, ::2, ::2], small.sample(seeds=[0, 1]))
    by_default = compare_models([small, large], [0], resample="nearest")
    assert by_default.display_size == 256, "small models are shown large by default"
    assert np.array_equal(by_default.rows[1].images[0, ::4, ::4], large.sample(seeds=[0])[0])
    chosen = compare_models([small, large], [0], size=48, resample="lanczos")
    expected = np.asarray(Image.fromarray(small.sample(seeds=[0])[0]).resize((48, 48), Image.LANCZOS))
    assert np.array_equal(chosen.rows[0].images[0], expected)


def test_a_model_with_another_latent_size_is_named_in_the_note():
    comparison = compare_models(
        [tiny_dcgan("a", 8, 32, 0), tiny_dcgan("b", 8, 32, 1), tiny_dcgan("wide", 16, 32, 2)], [5]
    )
    note = comparison.latent_note()
    assert "Latent sizes differ" in note
    assert "a, b share latents (z_dim 8)" in note and "wide has its own latents (z_dim 16)" in note


def test_bad_comparisons_say_what_to_change():
    generator = tiny_dcgan("a", 8, 32, 0)
    with pytest.raises(FacegenError, match="at least one seed"):
        compare_models([generator], [])
    with pytest.raises(FacegenError, match="Pick at least one model"):
        compare_models([], [1])
    with pytest.raises(FacegenError, match="Display size 4"):
        display_size([generator], 4)


def test_quality_rows_rank_models_by_fid_against_a_reference_folder(tiny_model, tmp_path):
    """A model measured against its own pictures must beat a network that draws something else."""
    reference = tmp_path / "reference"
    reference.mkdir()
    for index, face in enumerate(tiny_model.sample(seeds=range(1000, 1012))):
        Image.fromarray(face).save(reference / f"{index:02d}.png")
    untrained = tiny_dcgan("untrained", 100, 64, 0)
    reports = []
    results = evaluate_models(
        [untrained, tiny_model],
        str(reference),
        50,
        stand_in_features(),
        lambda model, stage, done, total: reports.append((model, stage, done, total)),
    )
    rows = quality_table(results)
    assert [row["model"] for row in rows] == [tiny_model.info.model_id, "untrained"]
    assert rows[0]["FID"] < rows[1]["FID"] and rows[0]["KID"] < rows[1]["KID"]
    assert all(row["generated"] == 50 and row["reference images"] == 12 for row in rows)
    assert (1, "generated", 50, 50) in reports and (0, "generated", 50, 50) in reports
