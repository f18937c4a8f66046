"""Latent direction files: unit vectors in safetensors, what they are in a JSON document.

- The per-model cache is a folder with `directions.safetensors` (one float32 tensor per direction, named by the
  direction) and `directions.json` (the document), both replaced atomically.
- An exported set is one small `.safetensors` file carrying the same document in its metadata under "facegen".

The document: {"format": "facegen-directions", "version": 1, "model": SPEC, "model_sha256": SHA,
"directions": [{"name", "space", "method", "strength", "layers", "accuracy", "description"}, ...]}.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from facegen.errors import CorruptFileError, FacegenError

DIRECTIONS_FORMAT = "facegen-directions"
DIRECTIONS_VERSION = 1
CACHE_VECTORS = "directions.safetensors"
CACHE_DOCUMENT = "directions.json"
METADATA_KEY = "facegen"


def new_document(model: str, model_sha256: str, entries: list[dict]) -> dict:
    return {
        "format": DIRECTIONS_FORMAT,
        "version": DIRECTIONS_VERSION,
        "model": model,
        "model_sha256": model_sha256,
        "directions": entries,
    }


def write_cache(folder: Path, document: dict, vectors: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    temporary_vectors = folder / f".{CACHE_VECTORS}.partial"
    temporary_document = folder / f".{CACHE_DOCUMENT}.partial"
    save_file(_tensors(vectors), str(temporary_vectors))
    temporary_document.write_text(json.dumps(document, indent=2))
    os.replace(temporary_vectors, folder / CACHE_VECTORS)
    os.replace(temporary_document, folder / CACHE_DOCUMENT)


def read_cache(folder: Path) -> tuple[dict | None, dict[str, np.ndarray]]:
    """The cached document and vectors, or (None, {}) when nothing is cached yet."""
    document_path, vectors_path = folder / CACHE_DOCUMENT, folder / CACHE_VECTORS
    if not document_path.exists() or not vectors_path.exists():
        return None, {}
    try:
        document = json.loads(document_path.read_text())
        vectors = {name: tensor.numpy() for name, tensor in load_file(str(vectors_path)).items()}
    except (json.JSONDecodeError, SafetensorError, OSError) as error:
        raise CorruptFileError(
            f"The direction cache in {folder} is damaged ({error}). Delete that folder and compute the directions again."
        ) from None
    return _checked(document, vectors, str(folder)), vectors


def write_single_file(path: Path, document: dict, vectors: dict[str, np.ndarray]) -> Path:
    if path.suffix != ".safetensors":
        raise FacegenError(f"Export file {path} must end in .safetensors.")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    save_file(_tensors(vectors), str(temporary), metadata={METADATA_KEY: json.dumps(document)})
    os.replace(temporary, path)
    return path


def read_single_file(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    if not path.is_file():
        raise FacegenError(f"{path} does not exist. Give a directions file written by `facegen directions --export`.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            vectors = {name: handle.get_tensor(name).numpy() for name in handle.keys()}  # noqa: SIM118 (safe_open is not a mapping)
        document = json.loads(metadata[METADATA_KEY])
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError):
        raise FacegenError(
            f"{path} is not a facegen directions file. Give one written by `facegen directions --export`."
        ) from None
    return _checked(document, vectors, str(path)), vectors


def _checked(document: object, vectors: dict[str, np.ndarray], source: str) -> dict:
    if not isinstance(document, dict) or document.get("format") != DIRECTIONS_FORMAT:
        raise FacegenError(f'{source} is not a facegen directions file (no "format": "{DIRECTIONS_FORMAT}").')
    if document.get("version") != DIRECTIONS_VERSION:
        raise FacegenError(
            f"{source} is version {document.get('version')}; this facegen reads directions version {DIRECTIONS_VERSION}."
        )
    entries = document.get("directions")
    if not isinstance(entries, list) or not all(
        isinstance(entry, dict) and entry.get("name") in vectors for entry in entries
    ):
        raise CorruptFileError(f"{source}: the document and the vectors do not list the same directions.")
    return document


def _tensors(vectors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.ascontiguousarray(vector, dtype=np.float32)) for name, vector in vectors.items()}
