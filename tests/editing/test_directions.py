"""Directions: closed-form SeFa matches the singular vectors of the weights and moves faces more than chance
directions; PCA finds ordered unit components; a user-labelled boundary separates faces it never saw; the cache
keeps, renames, exports and imports them per model file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facegen.editing.directions import (
    Direction,
    delete_direction,
    export_directions,
    fit_labelled_direction,
    import_directions,
    load_directions,
    move_along,
    pca_directions,
    rename_direction,
    save_directions,
    sefa_directions,
)
from facegen.editing.face import Face
from facegen.editing.render import FaceRenderer
from facegen.errors import FacegenError
from facegen.generator import Generator, ModelInfo
from facegen.models.dcgan import DCGANConfig, DCGANGenerator
from facegen.registry import load_generator

EDITS = Path(__file__).parent.parent / "fixtures" / "nvidia" / "edits"


@pytest.fixture(scope="module")
def sg2() -> Generator:
    return load_generator(str(EDITS.parent / "sg2.pkl"))


@pytest.fixture(scope="module")
def sg3t() -> Generator:
    return load_generator(str(EDITS.parent / "sg3t.pkl"))


@pytest.fixture(scope="module")
def tiny_dcgan() -> Generator:
    torch.manual_seed(0)
    config = DCGANConfig(z_dim=12, generator_channels=4, resolution=32)
    network = DCGANGenerator(config)
    return Generator(network, ModelInfo("tiny-dcgan", "dcgan", 12, 32))


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path))
    return tmp_path


def style_affine_matrix(generator: Generator) -> np.ndarray:
    """Every synthesis affine weight by its NVIDIA name, rows scaled to unit length (StyleGAN3's input affine,
    which sets the input transform rather than styles, left out)."""
    state = generator.exportable_network.state_dict()
    names = [name for name in state if name.startswith("synthesis.") and name.endswith("affine.weight")]
    rows = np.concatenate([state[name].double().numpy() for name in names if name != "synthesis.input.affine.weight"])
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("name", ["sg2", "sg3t"])
def test_top_sefa_direction_is_the_top_right_singular_vector_of_the_style_affines(name, request):
    generator = request.getfixturevalue(name)
    _, singular_values, right = np.linalg.svd(style_affine_matrix(generator), full_matrices=False)
    top = sefa_directions(generator, count=3)[0]
    assert abs(float(top.vector @ right[0])) > 1 - 1e-5
    assert top.strength == pytest.approx(singular_values[0], rel=1e-6)


def test_sefa_on_a_layer_range_uses_only_those_layers(sg2):
    # sg2 (64 px): ws 0-3 feed b4.conv1, b4.torgb, b8.conv0, b8.conv1, b8.torgb (torgb shares the next conv's w)
    state = sg2.exportable_network.state_dict()
    names = ["b4.conv1", "b4.torgb", "b8.conv0", "b8.conv1", "b8.torgb", "b16.conv0"]
    rows = np.concatenate([state[f"synthesis.{name}.affine.weight"].double().numpy() for name in names])
    _, _, right = np.linalg.svd(rows / np.linalg.norm(rows, axis=1, keepdims=True), full_matrices=False)
    top = sefa_directions(sg2, layers=range(4), count=1)[0]
    assert top.name == "sefa-L0-3-00" and top.layers == (0, 1, 2, 3)
    assert abs(float(top.vector @ right[0])) > 1 - 1e-5


def test_dcgan_sefa_uses_the_first_layer_on_z(tiny_dcgan):
    weight = tiny_dcgan.exportable_network.main[0].weight.detach().double().numpy()  # [z, out, 4, 4]
    rows = weight.reshape(12, -1).T
    _, _, right = np.linalg.svd(rows / np.linalg.norm(rows, axis=1, keepdims=True), full_matrices=False)
    top = sefa_directions(tiny_dcgan, count=2)[0]
    assert top.space == "z" and abs(float(top.vector @ right[0])) > 1 - 1e-5
    with pytest.raises(FacegenError, match="has no style layers"):
        sefa_directions(tiny_dcgan, layers=[0, 1])


def mean_pixel_change(renderer: FaceRenderer, direction: Direction, amount: float, seeds: range) -> float:
    faces = [Face.from_seed(renderer.generator, seed) for seed in seeds]
    before = renderer.generator.sample(seeds=list(seeds)).astype(float)
    after = np.stack([renderer.render(face.with_edits(move_along(direction, amount))) for face in faces])
    return float(np.abs(after - before).mean())


def test_top_sefa_direction_changes_faces_more_than_random_directions(sg2):
    renderer = FaceRenderer(sg2)
    top = sefa_directions(sg2, count=1)[0]
    random_vectors = np.random.default_rng(0).standard_normal((3, sg2.w_dim))
    random_changes = [
        mean_pixel_change(
            renderer,
            Direction("random", (vector / np.linalg.norm(vector)).astype(np.float32), "w", "random", 1.0),
            5.0,
            range(4),
        )
        for vector in random_vectors
    ]
    assert mean_pixel_change(renderer, top, 5.0, range(4)) > max(random_changes)


def test_pca_gives_ordered_orthonormal_reproducible_components(sg2):
    calls = []
    first = pca_directions(sg2, count=4, samples=2000, progress=lambda done, total: calls.append((done, total)))
    again = pca_directions(sg2, count=4, samples=2000)
    vectors = np.stack([direction.vector for direction in first])
    assert np.allclose(vectors @ vectors.T, np.eye(4), atol=1e-4)
    assert [direction.strength for direction in first] == sorted((d.strength for d in first), reverse=True)
    assert np.allclose(vectors, np.stack([direction.vector for direction in again]))
    assert calls[-1][0] == calls[-1][1] and len(calls) == calls[-1][1]
    # PCA in w: the top component is the direction of largest spread of sampled ws
    ws = sg2.map_to_w(torch.randn(2000, sg2.z_dim))[:, 0].numpy()
    spread_top = (ws @ first[0].vector).std()
    spread_random = (
        ws @ (random := np.random.default_rng(1).standard_normal(sg2.w_dim)) / np.linalg.norm(random)
    ).std()
    assert spread_top > spread_random


def test_pca_on_a_dcgan_works_in_z(tiny_dcgan):
    directions = pca_directions(tiny_dcgan, count=3, samples=600, batch_size=128)
    assert [direction.space for direction in directions] == ["z"] * 3
    assert all(abs(np.linalg.norm(direction.vector) - 1) < 1e-5 for direction in directions)


def brightness(generator: Generator, seeds: range) -> np.ndarray:
    """The label a test can give without a person: each face's mean pixel value."""
    return generator.sample(seeds=list(seeds), batch_size=32).mean(axis=(1, 2, 3))


def brightness_auc(renderer: FaceRenderer, direction: Direction, seeds: range) -> float:
    """How well the direction orders unseen faces labelled by brightness: the chance that a face of the brightest
    third projects further along it than one of the darkest third (0.5: no better than chance)."""
    faces = [Face.from_seed(renderer.generator, seed) for seed in seeds]
    projection = np.array([renderer.latent_point(face) @ direction.vector for face in faces])
    order = np.argsort(brightness(renderer.generator, seeds))
    third = len(faces) // 3
    dark, bright = projection[order[:third]], projection[order[-third:]]
    return float((bright[:, None] > dark[None, :]).mean())


@pytest.mark.parametrize("name", ["sg2", "tiny_model"])
def test_labelled_direction_separates_unseen_faces_better_than_chance(name, request):
    generator = request.getfixturevalue(name)
    renderer = FaceRenderer(generator)
    faces = [Face.from_seed(generator, seed) for seed in range(60)]
    order = np.argsort(brightness(generator, range(60)))
    bright, dark = [faces[i] for i in order[-20:]], [faces[i] for i in order[:20]]
    direction = fit_labelled_direction(generator, "bright", bright, dark, renderer)
    assert direction.accuracy > 0.6  # cross-validated on the marked faces
    assert brightness_auc(renderer, direction, range(1000, 1090)) > 0.7
    assert direction.strength > 0
    lighter = Face.from_seed(generator, 5000).with_edits(move_along(direction, 2 * direction.strength))
    darker = Face.from_seed(generator, 5000).with_edits(move_along(direction, -2 * direction.strength))
    assert renderer.render(lighter).mean() > renderer.render(darker).mean()


def test_labelled_direction_needs_faces_on_both_sides(sg2):
    faces = [Face.from_seed(sg2, seed) for seed in range(3)]
    with pytest.raises(FacegenError, match="Mark at least 2 faces"):
        fit_labelled_direction(sg2, "x", faces, faces[:1])


def test_cache_save_rename_delete_export_import(sg2, sg3t, cache, tmp_path):
    save_directions(sg2, sefa_directions(sg2, count=3))
    assert list(load_directions(sg2)) == ["sefa-00", "sefa-01", "sefa-02"]
    assert load_directions(sg3t) == {}
    rename_direction(sg2, "sefa-01", "smile")
    with pytest.raises(FacegenError, match="already is a direction named 'smile'"):
        rename_direction(sg2, "sefa-00", "smile")
    delete_direction(sg2, "sefa-02")
    stored = load_directions(sg2)
    assert list(stored) == ["sefa-00", "smile"]
    exported = export_directions(sg2, tmp_path / "out" / "sg2.safetensors", ["smile"])
    with pytest.raises(FacegenError, match="already has directions named smile"):
        import_directions(sg2, exported)
    with pytest.raises(FacegenError, match="holds directions of another model"):
        import_directions(sg3t, exported)
    delete_direction(sg2, "smile")
    (imported,) = import_directions(sg2, exported)
    assert imported.name == "smile" and np.array_equal(imported.vector, stored["smile"].vector)
    with pytest.raises(FacegenError, match="is a 96-value w vector; this model's directions are 64-value"):
        save_directions(sg3t, [Direction("x", np.ones(96, np.float32), "w", "sefa", 1.0)])


def test_keep_fixed_projects_the_kept_directions_out(sg2):
    moved, kept = sefa_directions(sg2, count=2)
    mixed = Direction("mixed", ((moved.vector + kept.vector) / np.sqrt(2)).astype(np.float32), "w", "labelled", 1.0)
    edit = move_along(mixed, 3.0, keep_fixed=[kept])
    vector = edit.vector.numpy()
    assert abs(float(vector @ kept.vector)) < 1e-5 and abs(float(vector @ moved.vector)) > 0.999
    assert edit.keep_fixed == ("sefa-01",)
    with pytest.raises(FacegenError, match="lies within the directions kept fixed"):
        move_along(kept, 1.0, keep_fixed=[kept])
