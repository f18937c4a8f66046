"""Convert once: a cached weights file in a foreign format is kept beside it as facegen's own checkpoint.

The first load of an NVIDIA pickle, a TensorFlow ProGAN pickle or a PyTorch `.pth` parses the foreign file and
maps its names onto facegen's modules. That result is written beside the file as `converted.safetensors` +
`converted.json` (`facegen.formats.checkpoint`), so later loads read tensors and JSON only: no pickle is opened.

The JSON records the sha256 and size of the file it was converted from (`info.converted_from`): a re-fetched,
replaced or truncated source invalidates the conversion, and the source is verified again (fetched anew when
damaged) before it is read. The converted file's own sha256 is recorded beside it and checked on every load, like
every other file in the cache.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facegen import hub
from facegen.errors import FacegenError
from facegen.formats import checkpoint, weights_format
from facegen.generator import Generator
from facegen.models import architecture_of

CONVERTED_NAME = "converted.safetensors"


def converted_path(source: Path) -> Path:
    """Where the conversion of the cached file `source` is kept: beside it."""
    return source.with_name(CONVERTED_NAME)


def load_cached_weights(
    source: Path, format_name: str, model_id: str, device: str, verify_source: Callable[[], Path]
) -> Generator:
    """The Generator of the cached weights file `source` (its sha256 recorded beside it), in `format_name`.

    A foreign format's conversion is used while it matches `source`, and then `source` is not even opened.
    Otherwise `verify_source()` makes sure `source` is present and intact (and returns its path), the file is read,
    and a foreign format's conversion is written for next time. Errors reading the file (CorruptFileError,
    UnsafePickleError) reach the caller, which owns the file.
    """
    file_format = weights_format(format_name)
    if file_format.foreign:
        converted = load_converted(converted_path(source), source, model_id, device)
        if converted is not None:
            return converted
    source = verify_source()
    generator = file_format.load(source, model_id, device)
    if file_format.foreign:
        try:
            save_converted(generator, converted_path(source), source)
        except OSError:
            # the model works without its conversion (e.g. on a full disk); the next load tries again
            discard_converted(converted_path(source))
    return generator


def save_converted(generator: Generator, path: Path, source: Path) -> Path:
    """Write `generator`, read from `source`, as an own checkpoint at `path` (+ .json), its sha256 beside it."""
    network = generator.exportable_network
    info = dataclasses.asdict(generator.info)
    info["extra"] = _json_safe(info["extra"])
    info["converted_from"] = _source_facts(source)
    checkpoint.save_generator(path, network, architecture_of(network), network.config, info)
    return path


def load_converted(path: Path, source: Path, model_id: str, device: str = "cpu") -> Generator | None:
    """The Generator converted from `source`, or None when there is none yet, it was made from another (or a since
    damaged) source file, or it is damaged itself (then it is deleted, to be converted again)."""
    config_path = checkpoint.config_path_for(path)
    if not (path.exists() and config_path.exists() and source.exists()):
        return None
    try:
        converted_from = json.loads(config_path.read_text()).get("info", {}).get("converted_from")
    except json.JSONDecodeError:
        converted_from = None
    recorded = hub.recorded_sha256(path)
    if converted_from != _source_facts(source) or recorded is None or hub.sha256_file(path) != recorded:
        discard_converted(path)
        return None
    try:
        return checkpoint.load_generator(path, model_id=model_id, device=device)
    except (FacegenError, RuntimeError, ValueError, KeyError, TypeError):
        # made by a facegen whose modules differed (renamed parameters, another config): convert again
        discard_converted(path)
        return None


def discard_converted(path: Path) -> None:
    for stale in (path, checkpoint.config_path_for(path), hub.sha256_record_path(path)):
        stale.unlink(missing_ok=True)


def _source_facts(source: Path) -> dict[str, Any]:
    """What identifies the source without reading it: its recorded sha256 and its size (a cheap truncation check)."""
    return {"sha256": hub.recorded_sha256(source), "size_bytes": source.stat().st_size}


def _json_safe(values: dict[str, Any]) -> dict[str, Any]:
    """The entries of `values` that JSON can hold as they are (descriptions of the foreign file, not weights)."""
    safe = {}
    for key, value in values.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        safe[key] = value
    return safe
