"""Which model a face or a direction belongs to: the one place that reads a Generator's pinned identity."""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from pathlib import Path

from facegen.generator import Generator
from facegen.hub import sha256_file

_digests: weakref.WeakKeyDictionary[Generator, str] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class ModelIdentity:
    spec: str  # what the user typed to load it: catalog id, file path or run:NAME@STEP
    sha256: str  # of the weights; recipes and direction caches are keyed by it


def model_identity(generator: Generator) -> ModelIdentity:
    """The model's spec and weights sha256: the loader's file sha256; for a file it did not hash, the file's;
    for a training run's checkpoint, the digest of the network's tensors (same weights, same digest)."""
    if generator.info.file_sha256:
        return ModelIdentity(generator.info.model_id, generator.info.file_sha256)
    if generator not in _digests:
        path = Path(generator.info.model_id).expanduser()
        _digests[generator] = sha256_file(path) if path.is_file() else _weights_digest(generator)
    return ModelIdentity(generator.info.model_id, _digests[generator])


def _weights_digest(generator: Generator) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(generator.exportable_network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()
