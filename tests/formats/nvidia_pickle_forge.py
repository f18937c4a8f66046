"""Test helper: take NVIDIA network pickles apart and write them back, or forge hostile ones.

`take_apart` reads a pickle without resolving anything: every global becomes `Global(module, name)`, every call
`Call(function, args, state)`, so the tree is exactly what the file says, independent of facegen's reader.
`forge` writes such a tree back with the same opcodes at any pickle protocol and any module spelling, so tests can
produce old files (protocol 2/3, `numpy.core`) and hostile ones (a call of `os.system` anywhere in a real file).
Only tests use this module; it never executes anything it reads.
"""

from __future__ import annotations

import io
import pickle
import struct
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch._utils

LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_TYPE_NAMES = {torch.float32: "FloatStorage", torch.float16: "HalfStorage", torch.int64: "LongStorage"}


class Global:
    """A `module.name` reference as the pickle spells it."""

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def __call__(self, *args: Any) -> Call:
        return Call(self, args)

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}"


class Call:
    """`function(*args)`, then BUILD with `state` when the pickle sets one."""

    def __init__(self, function: Global, args: tuple, state: Any = None) -> None:
        self.function = function
        self.args = args
        self.state = state

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __reduce__(self) -> tuple:
        return (self.function, self.args) if self.state is None else (self.function, self.args, self.state)

    def calls(self, name: str) -> bool:
        return self.function.name == name


class EasyDict(dict):
    """A recorded `dnnlib.util.EasyDict` (written back with NEWOBJ, as NVIDIA's files have it)."""


class _TakingApart(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return EasyDict if (module, name) == ("dnnlib.util", "EasyDict") else Global(module, name)


def take_apart(path: str | Path) -> dict:
    with open(path, "rb") as file:
        return _TakingApart(file).load()


class _Forger(pickle._Pickler):
    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(
        self,
        file: io.BytesIO,
        protocol: int,
        rename: dict[str, str],
        real_numpy: bool,
        storage_ids: dict[int, tuple] | None,
    ) -> None:
        super().__init__(file, protocol)
        self.rename = rename
        self.real_numpy = real_numpy
        self.storage_ids = storage_ids

    def persistent_id(self, obj: Any) -> Any:
        return None if self.storage_ids is None else self.storage_ids.get(id(obj))

    def reducer_override(self, obj: Any) -> Any:
        if self.real_numpy and isinstance(obj, Call) and obj.calls("_reconstruct"):
            _, shape, dtype_call, is_fortran, raw = obj.state
            flat = np.frombuffer(raw, dtype=np.dtype(dtype_call.args[0])).copy()
            return flat.reshape(shape, order="F" if is_fortran else "C").__reduce_ex__(self.proto)
        return NotImplemented

    def save_global_reference(self, reference: Global) -> None:
        module = self.rename.get(reference.module, reference.module)
        if self.proto >= 4:
            self.save(module)
            self.save(reference.name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{reference.name}\n".encode())
        self.memoize(reference)

    def save_easydict(self, mapping: EasyDict) -> None:
        self.save(Global("dnnlib.util", "EasyDict"))
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(mapping)
        self._batch_setitems(iter(mapping.items()))

    dispatch[Global] = save_global_reference
    dispatch[EasyDict] = save_easydict


def forge(
    tree: Any,
    protocol: int = 4,
    rename: dict[str, str] | None = None,
    real_numpy: bool = False,
    storage_ids: dict[int, tuple] | None = None,
) -> bytes:
    """Pickle a tree of Global/Call/containers; `rename` maps module spellings, `real_numpy` writes arrays as
    NumPy itself pickles them at that protocol."""
    buffer = io.BytesIO()
    _Forger(buffer, protocol, rename or {}, real_numpy, storage_ids).dump(tree)
    return buffer.getvalue()


def iter_calls(tree: Any, name: str | None = None) -> Iterator[Call]:
    """Every Call in the tree (each once), optionally only those of the global `name`."""
    seen: set[int] = set()
    pending = [tree]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Call):
            if name is None or item.calls(name):
                yield item
            pending.extend([item.args, item.state])
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)


def legacy_storage_stream(
    values: torch.Tensor,
    main_pickle: bytes | None = None,
    header: bytes | None = None,
    declared_numel: int | None = None,
    record_count: int | None = None,
) -> bytes:
    """What `torch.storage._load_from_bytes` receives for one storage: five pickles, a count, the raw elements.

    `main_pickle` / `header` replace the storage's persistent-id pickle / the magic-number pickle;
    `declared_numel` / `record_count` falsify the element count in the persistent id / before the raw bytes.
    """
    key = "1234"
    numel = values.numel() if declared_numel is None else declared_numel
    storage_id = ("storage", Global("torch", STORAGE_TYPE_NAMES[values.dtype]), key, "cpu", numel, None)
    pickles = [
        header or pickle.dumps(LEGACY_TORCH_MAGIC, protocol=2),
        pickle.dumps(1001, protocol=2),
        pickle.dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}, protocol=2),
        main_pickle or _persistent_root(storage_id),
        pickle.dumps([key], protocol=2),
    ]
    count = values.numel() if record_count is None else record_count
    return b"".join(pickles) + struct.pack("<q", count) + values.contiguous().numpy().tobytes()


def _persistent_root(storage_id: tuple) -> bytes:
    buffer = io.BytesIO()
    forger = _Forger(buffer, 2, {}, False, None)
    forger.persistent_id = lambda obj: storage_id if obj is _ROOT else None
    forger.dump(_ROOT)
    return buffer.getvalue()


_ROOT = object()


def tensor_call(storage_payload: bytes, size: tuple, stride: tuple, offset: int = 0) -> Call:
    """A tensor as NVIDIA writes it: `_rebuild_tensor_v2(_load_from_bytes(payload), offset, size, stride, ...)`."""
    storage = Global("torch.storage", "_load_from_bytes")(storage_payload)
    return Global("torch._utils", "_rebuild_tensor_v2")(
        storage, offset, size, stride, False, Global("collections", "OrderedDict")()
    )


def torch_storage(call: Call) -> torch.TypedStorage:
    """torch's own reading of a `_load_from_bytes` payload (weights-only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage is deprecated, and what these files hold
        return torch.load(io.BytesIO(call.args[0]), weights_only=True)


def reference_state_dict(module_call: Call, prefix: str = "") -> dict[str, torch.Tensor]:
    """A persistent object's tensors as torch itself rebuilds them, walking the raw `meta` dicts."""
    state = module_call.args[0]["state"]
    tensors = {}
    for table in ("_parameters", "_buffers"):
        for name, call in state[table].items():
            if call is None:
                continue
            if call.calls("_rebuild_parameter"):
                call = call.args[0]
            storage_call, offset, size, stride = call.args[:4]
            tensors[prefix + name] = torch._utils._rebuild_tensor_v2(
                torch_storage(storage_call), offset, size, stride, False, OrderedDict()
            )
    for name, child in state["_modules"].items():
        if child is not None:
            tensors |= reference_state_dict(child, f"{prefix}{name}.")
    return tensors


def write_torch_zip(path: Path, tree: Any) -> None:
    """The tree as `torch.save` would write it: data.pkl (protocol 2) plus one record per storage."""
    records: dict[str, bytes] = {}
    storage_ids: dict[int, tuple] = {}
    for call in iter_calls(tree, "_load_from_bytes"):
        storage = torch_storage(call)
        key = str(len(records))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            records[key] = torch.tensor([], dtype=storage.dtype).set_(storage).numpy().tobytes()
            count = len(storage)
        storage_ids[id(call)] = ("storage", Global("torch", STORAGE_TYPE_NAMES[storage.dtype]), key, "cpu", count)
    write_zip(path, forge(tree, protocol=2, storage_ids=storage_ids), records)


def write_zip(path: Path, data_pickle: bytes, records: dict[str, bytes] | None = None) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data_pickle)
        archive.writestr("archive/byteorder", "little")
        for key, raw in (records or {}).items():
            archive.writestr(f"archive/data/{key}", raw)
        archive.writestr("archive/version", "3\n")
