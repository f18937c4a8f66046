"""Recipes read back are checked field by field: a wrong type or value is one line naming the field, and a recipe
whose weights differ is refused whatever kind of model spec it names."""

from __future__ import annotations

import json

import pytest

from facegen import registry
from facegen.errors import FacegenError
from facegen.video import ClipRecipe
from tests.conftest import run_cli
from tests.fake_host import use_catalog
from tests.test_downloads import REPO_ID, build_hub_cache
from tests.test_registry import write_tiny_dcgan

OTHER_WEIGHTS = "0" * 64


def recipe_text(**changes: object) -> str:
    values = {
        "format": "facegen-clip",
        "version": 1,
        "model": "digiface-dcgan64",
        "keyframe_seeds": [1, 2],
        "seconds": 1.0,
    }
    return json.dumps({**values, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"truncation_psi": "0.5"}, 'truncation_psi must be a number, not "0.5"'),
        ({"model_sha256": 12345}, "model_sha256 must be text or null, not 12345"),
        ({"model_sha256": "abc"}, "model_sha256 must be 64 hexadecimal digits"),
        ({"easing": ["linear"]}, 'easing must be text, not ["linear"]'),
        ({"model": 5}, "model must be text, not 5"),
        ({"seconds": "1"}, 'seconds must be a number or null, not "1"'),
        ({"keyframe_seeds": [1, "2"]}, "keyframe_seeds must be a list of whole numbers"),
        ({"keyframe_seeds": 7}, "keyframe_seeds must be a list of whole numbers, not 7"),
        ({"fps": 30.5}, "fps must be a whole number, not 30.5"),
        ({"loop": 1}, "loop must be true or false, not 1"),
        ({"conditioning": {"a": 1}}, "conditioning must be a whole number or a list of numbers or null"),
        ({"conditioning": [1, "x"]}, "conditioning must be a whole number or a list of numbers or null"),
    ],
)
def test_a_wrong_type_in_a_recipe_is_one_line_naming_the_field(changes, message):
    with pytest.raises(FacegenError) as refused:
        ClipRecipe.from_json(recipe_text(**changes), source="walk.json")
    assert str(refused.value).startswith("walk.json: ") and message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_recipe_that_types_check_reads_back_with_tuples_and_floats():
    recipe = ClipRecipe.from_json(recipe_text(seconds=2, truncation_psi=1, conditioning=[1, 0.5]))
    assert recipe.seconds == 2.0 and isinstance(recipe.truncation_psi, float)
    assert recipe.keyframe_seeds == (1, 2) and recipe.conditioning == (1.0, 0.5)


def test_the_cli_shows_a_broken_recipe_as_one_line(tmp_path):
    (tmp_path / "walk.json").write_text(recipe_text(truncation_psi="0.5"))
    result = run_cli("video", "--recipe", str(tmp_path / "walk.json"), "--out", str(tmp_path / "again.mp4"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f'error: {tmp_path / "walk.json"}: truncation_psi must be a number, not "0.5".'
    ]


# -- weights that differ, for every kind of spec -----------------------------------------------------------------


def catalog_spec(tmp_path, monkeypatch) -> str:
    weights = tmp_path / "served" / "tiny.pt"
    weights.parent.mkdir()
    sha256 = write_tiny_dcgan(weights)
    use_catalog(
        tmp_path, monkeypatch, {"tiny": {"title": "Tiny", "filename": "tiny.pt", "sha256": sha256, "sources": []}}
    )
    cached = registry.cached_path(registry.catalog_entry("tiny"))
    cached.parent.mkdir(parents=True)
    cached.write_bytes(weights.read_bytes())
    return "tiny"


def file_spec(tmp_path, monkeypatch) -> str:
    write_tiny_dcgan(tmp_path / "tiny.pt")
    return str(tmp_path / "tiny.pt")


def hub_spec(tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))
    write_tiny_dcgan(tmp_path / "tiny.pt")
    build_hub_cache(tmp_path / "hf-cache", {"nets/tiny.pt": (tmp_path / "tiny.pt").read_bytes()})
    return f"hf:{REPO_ID}/nets/tiny.pt"


@pytest.mark.parametrize("make_spec", [catalog_spec, file_spec, hub_spec], ids=["catalog", "file", "hf"])
def test_a_recipe_whose_weights_differ_is_refused_for_every_kind_of_spec(make_spec, tmp_path, monkeypatch):
    spec = make_spec(tmp_path, monkeypatch)
    recorded = registry.load_generator(spec).identity.weights_sha256
    assert registry.load_recorded_generator(spec, recorded, "the recipe").identity.weights_sha256 == recorded
    with pytest.raises(FacegenError, match="The weights differ from those the recipe walk.json was made with"):
        registry.load_recorded_generator(spec, OTHER_WEIGHTS, "the recipe walk.json")
