"""Model specs: every kind reads back from its text, and a bare name is a catalog id unless it is plainly a file."""

from pathlib import Path

import pytest

from facegen.errors import SpecError
from facegen.spec import CatalogId, HubRef, RunRef, WeightsFile, format_spec, parse_spec

CATALOG_IDS = {"digiface-dcgan64", "stylegan2-ffhq-256"}


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("digiface-dcgan64", CatalogId("digiface-dcgan64")),
        ("nets/ffhq.pkl", WeightsFile(Path("nets/ffhq.pkl"))),
        ("/models/faces", WeightsFile(Path("/models/faces"))),
        ("converted.safetensors", WeightsFile(Path("converted.safetensors"))),
        ("./digiface-dcgan64", WeightsFile(Path("digiface-dcgan64"))),
        ("run:starter", RunRef("starter")),
        ("run:starter@3000", RunRef("starter", 3000)),
        ("run:/tmp/runs/faces@200", RunRef("/tmp/runs/faces", 200)),
        ("hf:someone/faces/network.pkl", HubRef("someone/faces", "network.pkl")),
        ("hf:someone/faces/snapshots/net.pkl@v1.2", HubRef("someone/faces", "snapshots/net.pkl", "v1.2")),
    ],
)
def test_every_kind_of_spec_reads_back_from_its_text(text, spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_spec(text, CATALOG_IDS) == spec
    assert parse_spec(format_spec(spec), CATALOG_IDS) == spec
    assert str(spec) == format_spec(spec)


def test_canonical_texts_name_the_step_and_revision_only_when_pinned():
    assert str(RunRef("starter", 3000)) == "run:starter@3000" and str(RunRef("starter")) == "run:starter"
    assert str(HubRef("o/r", "a/b.pkl", "abc123")) == "hf:o/r/a/b.pkl@abc123"
    assert str(HubRef("o/r", "a/b.pkl")) == "hf:o/r/a/b.pkl"
    assert str(WeightsFile(Path("digiface-dcgan64"))) == "./digiface-dcgan64", "must not read back as the catalog id"


def test_a_catalog_id_that_is_also_a_file_here_is_refused_with_both_readings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digiface-dcgan64").write_bytes(b"weights")
    with pytest.raises(SpecError) as caught:
        parse_spec("digiface-dcgan64", CATALOG_IDS)
    message = str(caught.value)
    assert "both a catalog model and a file" in message and "./digiface-dcgan64 for the file" in message
    assert parse_spec("./digiface-dcgan64", CATALOG_IDS) == WeightsFile(Path("digiface-dcgan64"))


def test_a_folder_named_like_a_catalog_id_does_not_hide_the_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digiface-dcgan64").mkdir()
    assert parse_spec("digiface-dcgan64", CATALOG_IDS) == CatalogId("digiface-dcgan64")


def test_an_existing_file_that_is_no_catalog_id_is_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mynet").write_bytes(b"weights")
    assert parse_spec("mynet", CATALOG_IDS) == WeightsFile(Path("mynet"))
    assert parse_spec("othernet", CATALOG_IDS) == CatalogId("othernet"), "unknown ids are explained on loading"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("run:starter@latest", "write run:NAME@STEP with a whole number"),
        ("run:", "names no run"),
        ("hf:someone/network.pkl", "hf:OWNER/REPO/PATH/FILE"),
        ("hf:someone/faces/net.pkl@", "hf:OWNER/REPO/PATH/FILE"),
        ("  ", "No model given"),
    ],
)
def test_malformed_specs_say_how_to_write_them(text, problem):
    with pytest.raises(SpecError, match=problem.replace(".", r"\.")):
        parse_spec(text, CATALOG_IDS)
