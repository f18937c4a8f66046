"""Style mixing, truncation cutoff and the StyleGAN3 camera give NVIDIA's own outputs, through the library and
through `python -m facegen edit` with each case's own command line."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegen.cli import main
from facegen.editing.face import Camera, Face, StyleMix
from facegen.editing.render import FaceRenderer
from facegen.generator import images_to_uint8
from facegen.registry import load_generator

EDITS = Path(__file__).parent.parent / "fixtures" / "nvidia" / "edits"
CASES = [
    (name, case)
    for name in ("sg2", "sg3t", "sg3r")
    for case in json.loads((EDITS / f"{name}.json").read_text())["cases"]
]
IDS = [f"{name}-{case['key']}" for name, case in CASES]


def first_of_each_kind_fast() -> list:
    """Every case; through the CLI, the first of each kind per network runs by default and the rest as slow."""
    seen, params = set(), []
    for (name, case), case_id in zip(CASES, IDS):
        marks = [pytest.mark.slow] if (name, case["kind"]) in seen else []
        seen.add((name, case["kind"]))
        params.append(pytest.param(name, case, id=case_id, marks=marks))
    return params


@pytest.fixture(scope="module")
def renderers() -> dict[str, FaceRenderer]:
    return {name: FaceRenderer(load_generator(str(EDITS.parent / f"{name}.pkl"))) for name in ("sg2", "sg3t", "sg3r")}


def reference(name: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(EDITS / f"{name}.npz") as arrays:
        return arrays[key], arrays[f"{key}_uint8"]


def face_for(case: dict, renderer: FaceRenderer) -> Face:
    face = Face.from_seed(renderer.generator, case["seed"], case["psi"], case["cutoff"], case["noise_mode"])
    if case["kind"] == "mix":
        face = face.with_edits(StyleMix(tuple(case["layers"]), seed=case["col_seed"]))
    elif case["kind"] == "camera":
        face = face.with_edits(Camera(tuple(case["translate"]), case["rotate"]))
    return face


@pytest.mark.parametrize(("name", "case"), CASES, ids=IDS)
def test_library_edit_equals_nvidia(name, case, renderers):
    renderer = renderers[name]
    face = face_for(case, renderer)
    expected_float, expected_uint8 = reference(name, case["key"])
    image = renderer.render_float(face)
    assert np.abs(image[0].numpy() - expected_float).max() <= 1e-4 * max(1.0, np.abs(expected_float).max())
    assert np.abs(images_to_uint8(image)[0].astype(int) - expected_uint8).max() <= 1


@pytest.mark.parametrize(("name", "case"), first_of_each_kind_fast())
def test_cli_edit_equals_nvidia(name, case, tmp_path):
    out = tmp_path / "face.png"
    words = shlex.split(case["cli"].replace("PKL", str(EDITS.parent / f"{name}.pkl")).replace("X.png", str(out)))
    assert words[:3] == ["python", "-m", "facegen"]
    assert main(words[3:]) == 0
    _, expected_uint8 = reference(name, case["key"])
    assert np.abs(np.asarray(Image.open(out)).astype(int) - expected_uint8).max() <= 1


def test_the_camera_leaves_the_shared_network_as_it_was(renderers):
    """gen_images.py overwrites the network's transform buffer; facegen passes the camera per call instead."""
    renderer = renderers["sg3t"]
    stored = renderer.generator.network.synthesis.input.transform.clone()
    plain = Face.from_seed(renderer.generator, 7)
    before = renderer.render(plain)
    renderer.render(plain.with_edits(Camera((0.2, -0.1), 25.0)))
    assert np.array_equal(renderer.generator.network.synthesis.input.transform, stored)
    assert np.array_equal(renderer.render(plain), before)
