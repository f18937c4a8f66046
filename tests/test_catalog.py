"""The shipped catalog: every model the issue names, official URL forms, honest facts, cards, short labels."""

from __future__ import annotations

import re

import pytest

from facegen import hub, registry
from facegen.cli import main as cli_main
from facegen.ui.widgets import choice_label

CATALOG = registry.load_catalog()
NGC = r"https://api\.ngc\.nvidia\.com/v2/models/nvidia/research/"
# (id prefix, the official URL form of formats-detail.md section A); the more specific prefix first
OFFICIAL_URL_FORMS = [
    ("stylegan2-ada-", r"https://nvlabs-fi-cdn\.nvidia\.com/stylegan2-ada-pytorch/pretrained/[a-z0-9]+\.pkl"),
    ("stylegan2-", NGC + r"stylegan2/versions/1/files/stylegan2-[a-z]+-\d+x\d+\.pkl"),
    ("stylegan3-", NGC + r"stylegan3/versions/1/files/stylegan3-[tr]-[a-z]+-\d+x\d+\.pkl"),
    ("pgan-", r"https://dl\.fbaipublicfiles\.com/gan_zoo/PGAN/\w+-[0-9a-f]{8}\.pth"),
]
READABLE_FORMATS = ("facegen", "torch-dcgan", "nvidia-pickle", "tf-progan", "facebook-pgan")


def test_the_issues_models_are_all_there():
    required = {
        "stylegan2-ffhq-256", "stylegan2-ffhq-1024", "stylegan2-ada-ffhq", "stylegan2-ada-metfaces",
        "stylegan3-t-ffhqu-256", "stylegan3-t-ffhqu-1024", "stylegan3-r-ffhqu-256", "stylegan3-r-ffhqu-1024",
        "progan-celebahq-1024", "pgan-celebahq-256", "pgan-celebahq-512",
    }  # fmt: skip
    assert required <= set(CATALOG)


@pytest.mark.parametrize("entry", CATALOG.values(), ids=lambda entry: entry.model_id)
def test_entry_is_complete_and_honest(entry):
    assert entry.format in READABLE_FORMATS
    assert entry.resolution in (64, 256, 512, 1024) and entry.z_dim > 0
    assert entry.license and len(entry.card) > 200, "every model has a licence and a card"
    assert entry.sources, "every catalog model can be fetched"
    for sha256 in [entry.sha256] + [getattr(source, "sha256", None) for source in entry.sources]:
        assert sha256 is None or re.fullmatch(r"[0-9a-f]{64}", sha256), "a recorded hash is a full sha256"
    for source in entry.sources:
        if isinstance(source, hub.UrlSource):
            assert source.url.startswith("https://")
        if isinstance(source, hub.HubSource):
            assert source.revision, "Hub mirrors name a revision"
            assert source.repo_id in entry.card, "the card names every mirror"


def official_url_form(model_id: str) -> str | None:
    return next((form for prefix, form in OFFICIAL_URL_FORMS if model_id.startswith(prefix)), None)


@pytest.mark.parametrize("model_id", [model_id for model_id in CATALOG if official_url_form(model_id)])
def test_official_source_has_the_documented_url_form_and_file_name(model_id):
    entry = CATALOG[model_id]
    official = entry.sources[0]
    assert re.fullmatch(official_url_form(model_id), official.url), official.url
    assert official.url.rsplit("/", 1)[1] == entry.filename


def test_models_lists_every_entry_with_its_state_and_licence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "empty-cache"))
    assert cli_main(["models"]) == 0
    listing = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in listing if line and not line.startswith(" ")}
    assert set(CATALOG) <= set(rows)
    assert rows["progan-celebahq-1024"].split()[1:3] == ["downloadable", "1024"]
    assert rows["progan-celebahq-1024"].endswith("92.3 MB")
    assert rows["stylegan3-r-ffhqu-256"].endswith("≈ 222 MB")
    assert rows["pgan-celebahq-512"].endswith("size unknown")
    assert sum(line.startswith("    licence: ") for line in listing) == len(CATALOG)


def test_picker_labels_stay_short(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "empty-cache"))
    labels = [choice_label(choice) for choice in registry.list_model_choices()]
    assert len(set(labels)) == len(labels)
    assert max(map(len, labels)) <= 45, max(labels, key=len)
