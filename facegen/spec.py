"""Model specs: the one grammar that names a model, parsed and formatted here and nowhere else.

    digiface-dcgan64                     a catalog id (pretrained/catalog.toml)
    path/to/net.pkl  ./net  ~/net.pt     a weights file
    run:NAME  run:NAME@STEP              a checkpoint of an own training run: NAME is a run under runs/ or a run
                                         directory; without @STEP, the run's newest checkpoint
    hf:OWNER/REPO/PATH/FILE[@REVISION]   a weights file in a Hugging Face Hub model repository

A text names a file when it looks like a path (a path separator, a leading `.`, `~` or `/`, or a weights suffix),
or when it exists and is not a catalog id: a folder that happens to carry a catalog id's name does not hide the
model. A catalog id that is also a file in the current folder is ambiguous and refused, with both readings.

A `ModelIdentity` is what a loaded model is: its pinned spec (a run checkpoint always with its step) and the sha256
of its weights file. Recipes, caches and thumbnails key on it.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from facegen.errors import FacegenError, SpecError

RUN_PREFIX = "run:"
HUB_PREFIX = "hf:"
DEFAULT_REVISION = "main"
WEIGHTS_SUFFIXES = (".pkl", ".safetensors", ".pt", ".pth", ".tar", ".ckpt")


@dataclass(frozen=True)
class CatalogId:
    model_id: str

    def __str__(self) -> str:
        return self.model_id


@dataclass(frozen=True)
class WeightsFile:
    path: Path

    def __str__(self) -> str:
        text = str(self.path)
        # a bare name (a file without a suffix) must still read back as a file, not as a catalog id
        return text if looks_like_path(text) else f".{os.sep}{text}"


@dataclass(frozen=True)
class RunRef:
    name: str  # a run under the runs folder, or a run directory's path
    step: int | None = None  # None: the newest checkpoint, whichever that is when loaded

    def __str__(self) -> str:
        return RUN_PREFIX + self.name + ("" if self.step is None else f"@{self.step}")


@dataclass(frozen=True)
class HubRef:
    repo_id: str  # OWNER/REPO
    filename: str  # the path inside the repository
    revision: str = DEFAULT_REVISION

    def __str__(self) -> str:
        revision = "" if self.revision == DEFAULT_REVISION else f"@{self.revision}"
        return f"{HUB_PREFIX}{self.repo_id}/{self.filename}{revision}"


ModelSpec = CatalogId | WeightsFile | RunRef | HubRef


def looks_like_path(text: str) -> bool:
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return (
        any(separator in text for separator in separators)
        or text.startswith((".", "~"))
        or Path(text).suffix.lower() in WEIGHTS_SUFFIXES
    )


def parse_spec(text: str, catalog_ids: Collection[str]) -> ModelSpec:
    """The spec `text` names; `catalog_ids` are the ids a bare name may mean (the registry passes its catalog's)."""
    text = text.strip()
    if not text:
        raise SpecError("No model given. Name a catalog id, a weights file, run:NAME[@STEP] or hf:OWNER/REPO/FILE.")
    if text.startswith(RUN_PREFIX):
        return _parse_run(text)
    if text.startswith(HUB_PREFIX):
        return _parse_hub(text)
    if text in catalog_ids:
        if Path(text).is_file():
            raise SpecError(
                f"{text!r} is both a catalog model and a file in this folder. Write ./{text} for the file, or run "
                "from another folder (or rename the file) for the catalog model."
            )
        return CatalogId(text)
    if looks_like_path(text) or Path(text).exists():
        return WeightsFile(Path(text).expanduser())
    return CatalogId(text)


def format_spec(spec: ModelSpec) -> str:
    """The canonical text of `spec`: `parse_spec(format_spec(spec), ids) == spec`."""
    return str(spec)


def _parse_run(text: str) -> RunRef:
    body = text[len(RUN_PREFIX) :]
    name, separator, step = body.rpartition("@")
    if not separator:
        name, step = body, ""
    elif not step.isdigit():
        raise SpecError(f"Bad step in {text!r}: write run:NAME@STEP with a whole number, e.g. run:starter@200.")
    if not name:
        raise SpecError(f"{text!r} names no run: write run:NAME or run:NAME@STEP, e.g. run:starter.")
    return RunRef(name, int(step) if step else None)


def _parse_hub(text: str) -> HubRef:
    body, separator, revision = text[len(HUB_PREFIX) :].partition("@")
    owner, _, rest = body.partition("/")
    repo, _, filename = rest.partition("/")
    if not (owner and repo and filename) or (separator and not revision):
        raise SpecError(
            f"{text!r} is not a Hub file: write hf:OWNER/REPO/PATH/FILE, optionally @REVISION (a branch, tag or "
            "commit), e.g. hf:someone/faces/network.pkl@main."
        )
    return HubRef(f"{owner}/{repo}", filename, revision or DEFAULT_REVISION)


@dataclass(frozen=True)
class ModelIdentity:
    """Which weights a Generator renders with: the pinned spec and the sha256 of the weights file."""

    spec: ModelSpec
    weights_sha256: str

    @property
    def key(self) -> tuple[str, str]:
        """Plain text to key caches on: a new checkpoint or changed weights give a new key."""
        return str(self.spec), self.weights_sha256

    def check_weights(self, expected_sha256: str | None, recorded_by: str = "the recipe") -> None:
        """Refuse weights other than those `recorded_by` was made with: its images would silently differ."""
        if expected_sha256 is None or expected_sha256.lower() == self.weights_sha256:
            return
        raise FacegenError(
            f"The weights differ from those {recorded_by} was made with (sha256 {self.weights_sha256[:12]}… in "
            f"{self.spec} now, {expected_sha256[:12]}… then), so the images would differ. "
            + _how_to_find_the_weights(self.spec)
        )


def _how_to_find_the_weights(spec: ModelSpec) -> str:
    if isinstance(spec, RunRef):
        return (
            f"The checkpoint at step {spec.step} of run {spec.name} was written anew since (a resumed run rewrites "
            "its steps); give a copy of the original checkpoint file as the model."
        )
    if isinstance(spec, HubRef):
        return "The file at that revision changed; name the revision it was made with (hf:…@COMMIT)."
    if isinstance(spec, CatalogId):
        return f"The catalog's file for {spec} changed since; give a copy of the original weights file as the model."
    return "Give the original weights file as the model."
