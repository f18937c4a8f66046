"""Which model a face or a direction belongs to: the Generator's pinned identity, or, for a network that was
never saved (one built in training or a test), the digest of its tensors."""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass

from facegen.generator import Generator

_digests: weakref.WeakKeyDictionary[Generator, str] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class FaceModel:
    spec: str  # the pinned spec text: catalog id, file path, run:NAME@STEP or hf:…
    sha256: str  # of the weights; recipes and direction caches are keyed by it


def model_identity(generator: Generator) -> FaceModel:
    if generator.identity is not None:
        return FaceModel(str(generator.identity.spec), generator.identity.weights_sha256)
    if generator not in _digests:
        _digests[generator] = _weights_digest(generator)
    return FaceModel(generator.info.model_id, _digests[generator])


def _weights_digest(generator: Generator) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(generator.exportable_network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()
