"""A face is a recipe: it survives JSON and PNG round trips, restores the same pixels, and refuses bad input with
one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facegen.editing.directions import move_along, sefa_directions
from facegen.editing.face import Camera, Face, SetAttribute, SetClass, StyleMix, face_labels
from facegen.editing.render import FaceRenderer
from facegen.errors import FacegenError
from facegen.formats.checkpoint import save_generator
from facegen.generator import Generator, ModelInfo
from facegen.images import png_bytes
from facegen.models.cdcgan import CDCGANConfig, CDCGANGenerator
from facegen.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from facegen.registry import load_generator
from tests.conftest import run_cli

EDITS = Path(__file__).parent.parent / "fixtures" / "nvidia" / "edits"
SG2 = str(EDITS.parent / "sg2.pkl")


@pytest.fixture(scope="module")
def sg2():
    return load_generator(SG2)


@pytest.fixture(scope="module")
def edited_face(sg2) -> Face:
    """A face with every kind of StyleGAN2 edit, from a stored w+ latent."""
    w_plus = sg2.map_to_w(sg2.latents_for_seeds([5]))[0].numpy()
    donor = Face.from_seed(sg2, 11, truncation_psi=0.8)
    return Face.from_latent(sg2, "w+", w_plus, truncation_psi=0.7, truncation_cutoff=6).with_edits(
        StyleMix((0, 1, 2, 3), seed=9),
        StyleMix((8, 9), face=donor),
        move_along(sefa_directions(sg2, count=2)[1], 2.5, layers=(4, 5, 6, 7)),
    )


def test_json_round_trip_gives_the_same_face(edited_face):
    text = edited_face.to_json()
    assert Face.from_json(text) == edited_face
    assert json.loads(text)["latent"]["space"] == "w+"


def test_png_recipe_restores_the_face_bit_for_bit_through_from(sg2, edited_face, tmp_path):
    renderer = FaceRenderer(sg2)
    first = tmp_path / "first.png"
    first.write_bytes(png_bytes(renderer.render(edited_face), edited_face.to_dict()))
    again = tmp_path / "again.png"
    result = run_cli("edit", "--from", str(first), "--out", str(again))
    assert result.returncode == 0, result.stderr
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(first)))
    assert Face.from_png(again) == edited_face


def test_edit_png_restores_itself_and_further_edits_add_on(tmp_path):
    first, second, third = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    assert (
        run_cli(
            "edit", "--model", SG2, "--seed", "3", "--psi", "0.7", "--mix", "11:fine", "--out", str(first)
        ).returncode
        == 0
    )
    assert run_cli("edit", "--from", str(first), "--out", str(second)).returncode == 0
    assert Image.open(first).tobytes() == Image.open(second).tobytes()
    assert run_cli("edit", "--from", str(first), "--mix", "4:coarse", "--out", str(third)).returncode == 0
    assert Image.open(first).tobytes() != Image.open(third).tobytes()
    assert len(Face.from_png(third).edits) == 2


def test_single_face_from_sample_becomes_a_face(sg2, tmp_path):
    result = run_cli("sample", "--model", SG2, "--seeds", "4", "--psi", "0.6", "--out", f"{tmp_path}/")
    assert result.returncode == 0, result.stderr
    sampled = tmp_path / "seed0004.png"
    face = Face.from_png(sampled)
    assert (face.seed, face.truncation_psi) == (4, 0.6)
    assert np.array_equal(FaceRenderer(sg2).render(face), np.asarray(Image.open(sampled)))


def test_stored_w_is_truncated_like_the_seed_it_came_from(sg2):
    renderer = FaceRenderer(sg2)
    w = sg2.map_to_w(sg2.latents_for_seeds([8]))[0, 0].numpy()
    from_w = Face.from_latent(sg2, "w", w, truncation_psi=0.5, truncation_cutoff=3)
    from_seed = Face.from_seed(sg2, 8, truncation_psi=0.5, truncation_cutoff=3)
    assert np.abs(renderer.render(from_w).astype(int) - renderer.render(from_seed)).max() <= 1


def test_truncation_cutoff_runs_through_generator_sample(sg2):
    full = sg2.sample(seeds=[5], truncation_psi=0.5)
    cut = sg2.sample(seeds=[5], truncation_psi=0.5, truncation_cutoff=4)
    assert not np.array_equal(full, cut)
    assert np.array_equal(cut[0], FaceRenderer(sg2).render(Face.from_seed(sg2, 5, 0.5, 4)))


def test_class_edit_on_a_conditional_stylegan(tmp_path):
    config = StyleGAN2Config(
        z_dim=16, c_dim=3, w_dim=16, img_resolution=16, mapping_layers=2, channel_base=256, channel_max=16
    )
    info = {"c_dim": 3, "label_names": ["a", "b", "c"], "has_w_space": True}
    path = save_generator(tmp_path / "cond.safetensors", StyleGAN2Generator(config), "stylegan2", config, info)
    generator = load_generator(str(path))
    renderer = FaceRenderer(generator)
    face = Face.from_seed(generator, 1, labels=0)
    assert not np.array_equal(renderer.render(face), renderer.render(face.with_edits(SetClass(2))))
    assert np.array_equal(
        renderer.render(face.with_edits(SetClass(2))), renderer.render(Face.from_seed(generator, 1, labels=2))
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"truncation_psi": "high"}, "truncation_psi is 'high'; it must be a number"),
        ({"noise_mode": "loud"}, "noise_mode is 'loud'; it must be one of const, random, none"),
        ({"latent": {"seed": -1}}, "seed -1 is not a whole number"),
        ({"latent": {"space": "q"}}, "space 'q' is not one of z, w, w+"),
        ({"latent": {"space": "w", "shape": [3], "float32_base64": "AAAA"}}, "3 bytes do not hold"),
        ({"edits": [{"kind": "warp"}]}, "edit 1: kind must be one of"),
        ({"edits": [{"kind": "mix", "layers": [0]}]}, "give exactly one of seed and face"),
        ({"edits": [{"kind": "camera", "translate": [1]}]}, "translate is [1]; it must be two numbers"),
        ({"colour": "red"}, "fields facegen does not know: colour"),
        ({"version": 7}, "version 7 face recipe"),
    ],
)
def test_bad_recipe_fields_give_one_clear_error(sg2, change, message):
    values = Face.from_seed(sg2, 1).to_dict() | change
    with pytest.raises(FacegenError) as error:
        Face.from_dict(values)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (StyleMix((8, 9, 10), seed=1), "Style mixing: layer 10 is beyond this model's 10 ws"),
        (Camera((0.1, 0.0)), "has no camera"),
    ],
)
def test_edits_that_do_not_fit_the_model_are_refused(sg2, edit, message):
    with pytest.raises(FacegenError) as error:
        FaceRenderer(sg2).render(Face.from_seed(sg2, 1).with_edits(edit))
    assert message in str(error.value)


def test_attribute_edits_on_an_attribute_conditioned_dcgan():
    torch.manual_seed(0)
    network = CDCGANGenerator(CDCGANConfig(z_dim=8, c_dim=3, generator_channels=4, resolution=32))
    attributes = ("Smiling", "Bangs", "Eyeglasses")
    info = ModelInfo("tiny-cdcgan", "cdcgan", 8, 32, 3, attributes, labels_are_attributes=True)
    generator = Generator(network, info)
    renderer = FaceRenderer(generator)
    face = Face.from_seed(generator, 4)
    smiling = face.with_edits(SetAttribute("Smiling", 1.0))
    assert face_labels(smiling, generator) == (1.0, 0.0, 0.0)
    assert not np.array_equal(renderer.render(face), renderer.render(smiling))
    assert np.array_equal(renderer.render(smiling), renderer.render(Face.from_seed(generator, 4, labels=(1, 0, 0))))
    assert Face.from_json(smiling.to_json()) == smiling
    with pytest.raises(FacegenError, match="Unknown attribute 'Beard'. This model's attributes: Smiling, Bangs"):
        renderer.render(face.with_edits(SetAttribute("Beard", 1.0)))
    with pytest.raises(FacegenError, match="has no style layers, so style mixing"):
        renderer.render(face.with_edits(StyleMix((0,), seed=1)))
