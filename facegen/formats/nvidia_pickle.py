"""NVIDIA network pickles (StyleGAN2-ADA-PyTorch, StyleGAN3), read as data and never as code.

A release or training snapshot is `pickle.dump` of a dict (`G`, `D`, `G_ema`, `augment_pipe`,
`training_set_kwargs`). Every network in it is a "persistent object": a call of
`torch_utils.persistence._reconstruct_persistent_obj(meta)` whose `meta` carries the class name, the object's
`__dict__` and the full source of the defining module. NVIDIA's loader executes that source; facegen does not.

The unpickler resolves only an allow-list of globals, each bound to a replacement that returns inert records
(immutable tuples the pickle's BUILD/SETITEM opcodes cannot modify); anything else raises `UnsafePickleError`
naming the global. Tensor storages arrive as nested legacy `torch.save` streams, parsed here by a second
unpickler that may name nothing but storage types, with every declared size checked against the bytes present
before anything is allocated. Only after the whole file is read are the records validated and turned into
tensors, numpy arrays and `PersistentModule`s.

A torch zip checkpoint (`torch.save`) is read the same way: its `data.pkl` goes through the same unpickler and
its storages come from the archive's uncompressed `data/<key>` records.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import math
import pickle
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import torch

from facegen.errors import CorruptFileError, FacegenError, ModelNotFoundError, UnsafePickleError
from facegen.generator import Generator, ModelInfo
from facegen.models import build_generator

PERSISTENCE_VERSION = 6  # torch_utils.persistence._version; NVIDIA's loader requires equality too
LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_TORCH_PROTOCOL = 1001
# The largest real network (StyleGAN3-R 1024) has ~100 MB tensors; anything near this cap is forged or damaged.
MAX_STORAGE_BYTES = 8 << 30
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format since PyTorch 1.6
NETWORK_KEYS = ("G", "D", "G_ema", "augment_pipe", "training_set_kwargs")

STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
}

# numpy type codes that hold plain numbers: bool, signed/unsigned ints, floats, complex (e.g. 'f8', 'i8', 'b1')
NUMERIC_NUMPY_TYPE = re.compile(r"[biufc]\d{1,2}")
NUMPY_BYTE_ORDERS = {"<": "<", ">": ">", "|": "=", "=": "="}


@dataclass
class PersistentModule:
    """One NVIDIA network object, as data: what its constructor set, its tensors and its children."""

    class_name: str
    # Plain attributes the class set in __init__ (torch bookkeeping removed): numpy scalars are Python numbers,
    # numpy arrays stay np.ndarray, EasyDicts are dicts.
    attributes: dict[str, Any]
    parameters: dict[str, torch.Tensor | None]
    buffers: dict[str, torch.Tensor | None]
    modules: dict[str, PersistentModule | None]
    init_args: tuple
    init_kwargs: dict
    module_src_sha256: str

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, PersistentModule]]:
        """This module and every descendant, with dotted names as torch's `named_modules` gives them."""
        yield prefix, self
        for name, child in self.modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Parameters and buffers under dotted names ('synthesis.b4.conv1.weight'), in torch's order."""
        state: dict[str, torch.Tensor] = {}
        for prefix, module in self.named_modules():
            for name, tensor in (*module.parameters.items(), *module.buffers.items()):
                if tensor is not None:
                    state[f"{prefix}.{name}" if prefix else name] = tensor
        return state

    def find(self, dotted: str) -> PersistentModule:
        """The descendant at a dotted path ('synthesis.b4.conv1'); '' is this module."""
        module = self
        walked: list[str] = []
        for name in dotted.split(".") if dotted else []:
            child = module.modules.get(name)
            if child is None:
                where = ".".join(walked) or "the network"
                children = ", ".join(sorted(module.modules)) or "none"
                raise CorruptFileError(
                    f"The {self.class_name} has no module {dotted!r}: {where} ({module.class_name}) has children "
                    f"[{children}]. The file does not hold the network facegen expected."
                )
            walked.append(name)
            module = child
        return module


# -- inert records the unpickler produces -------------------------------------------------------------------
# NamedTuples have no __dict__, no __setstate__ and read-only fields, so a pickle cannot BUILD into them.


class _AllowedCall(NamedTuple):
    """An allow-listed global, bound to facegen's replacement."""

    function: Callable[..., Any]

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)


class _StorageType(NamedTuple):
    name: str
    dtype: torch.dtype


class _NdarrayClass(NamedTuple):
    """Stands for `numpy.ndarray`, which a pickle may only pass to `_reconstruct`, never call."""


class _LoadedStorage(NamedTuple):
    values: torch.Tensor  # 1-D, the storage's elements


class _TensorRecord(NamedTuple):
    storage: _LoadedStorage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


class _PersistentRecord(NamedTuple):
    meta: Any


class _NumpyDtype:
    """`numpy.dtype(code, align, copy)` followed by its BUILD (byte order); numeric types only."""

    def __init__(self, code: Any, align: Any = False, copy: Any = True) -> None:
        if not isinstance(code, str) or not NUMERIC_NUMPY_TYPE.fullmatch(code):
            raise CorruptFileError(f"it holds a numpy dtype {printable(code)}; only numeric arrays are weights.")
        self.code = code
        self.byte_order: str | None = None

    def __setstate__(self, state: Any) -> None:
        if self.byte_order is not None:
            raise CorruptFileError("it sets the state of one numpy dtype twice.")
        if not (isinstance(state, tuple) and len(state) >= 5 and state[1] in NUMPY_BYTE_ORDERS):
            raise CorruptFileError(f"it holds a numpy dtype with an unexpected state {printable(state)}.")
        if any(part is not None for part in state[2:5]):
            raise CorruptFileError("it holds a structured numpy dtype; only plain numeric arrays are weights.")
        self.byte_order = NUMPY_BYTE_ORDERS[state[1]]

    def to_numpy(self) -> np.dtype:
        return np.dtype(self.code).newbyteorder(self.byte_order or "=")


class _NumpyArray:
    """`numpy.core.multiarray._reconstruct(ndarray, ...)` followed by its BUILD (shape, dtype, raw bytes)."""

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5):
            raise CorruptFileError(f"it holds a numpy array with an unexpected state {printable(state)}.")
        _, shape, dtype, is_fortran, raw = state
        self.fill(shape, dtype, is_fortran, raw)

    def fill(self, shape: Any, dtype: Any, is_fortran: Any, raw: Any) -> None:
        if self.array is not None:
            raise CorruptFileError("it sets the state of one numpy array twice.")
        if not (isinstance(dtype, _NumpyDtype) and _is_int_tuple(shape) and isinstance(raw, bytes)):
            raise CorruptFileError("it holds a numpy array that is not plain numeric data.")
        numpy_dtype = dtype.to_numpy()
        if math.prod(shape) * numpy_dtype.itemsize != len(raw):
            raise CorruptFileError(
                f"a numpy array declares shape {shape} of {numpy_dtype} but carries {len(raw)} bytes."
            )
        flat = np.frombuffer(raw, dtype=numpy_dtype).copy()
        self.array = flat.reshape(shape, order="F" if is_fortran else "C")


# -- replacements for the allow-listed globals --------------------------------------------------------------


def _reconstruct_persistent_obj(meta: Any) -> _PersistentRecord:
    # Validated after loading (`DataBuilder.module`): module_src is only ever hashed.
    return _PersistentRecord(meta)


def _rebuild_tensor_v2(
    storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, backward_hooks: Any, metadata: Any = None
) -> _TensorRecord:
    if not isinstance(storage, _LoadedStorage):
        raise CorruptFileError("a tensor is built from something that is not a tensor storage.")
    if not (_is_int_tuple(size) and _is_int_tuple(stride) and len(size) == len(stride)):
        raise CorruptFileError(f"a tensor declares a malformed shape {printable(size)} / stride {printable(stride)}.")
    if not (isinstance(offset, int) and offset >= 0):
        raise CorruptFileError(f"a tensor declares a malformed storage offset {printable(offset)}.")
    available = storage.values.numel()
    count = math.prod(size)
    needed = 0 if count == 0 else offset + 1 + sum((length - 1) * step for length, step in zip(size, stride))
    if needed > available or count > available:
        raise CorruptFileError(
            f"a tensor declares shape {size} (stride {stride}, offset {offset}), which needs {max(needed, count)} "
            f"values, but its storage holds {available}."
        )
    return _TensorRecord(storage, offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any, state: Any = None) -> _TensorRecord:
    # A Parameter is just its tensor here: facegen copies values into its own modules.
    if not isinstance(data, _TensorRecord):
        raise CorruptFileError("a parameter is built from something that is not a tensor.")
    return data


def _storage_from_legacy_bytes(payload: Any) -> _LoadedStorage:
    """Parse one storage written by legacy (non-zip) `torch.save`, as `torch.storage._load_from_bytes` receives it.

    The stream is five pickles (magic number, protocol, system info, the storage's persistent id, its key list)
    followed by an int64 element count and the raw little-endian elements.
    """
    if not isinstance(payload, bytes):
        raise CorruptFileError("a tensor storage is not stored as bytes.")
    stream = io.BytesIO(payload)
    if _load_plain_pickle(stream) != LEGACY_TORCH_MAGIC or _load_plain_pickle(stream) != LEGACY_TORCH_PROTOCOL:
        raise CorruptFileError("a tensor storage is not in the legacy torch.save format.")
    system_info = _load_plain_pickle(stream)
    if not isinstance(system_info, dict) or system_info.get("little_endian") is not True:
        raise CorruptFileError("a tensor storage was written on a big-endian machine, which facegen does not read.")
    declarations: list[tuple[_StorageType, str, int]] = []

    def declare(persistent_id: Any) -> tuple[_StorageType, str, int]:
        declarations.append(_storage_declaration(persistent_id))
        return declarations[-1]

    root = RestrictedUnpickler(stream, STORAGE_TYPE_GLOBALS, declare).load()
    keys = _load_plain_pickle(stream)
    if len(declarations) != 1 or root is not declarations[0] or keys != [declarations[0][1]]:
        raise CorruptFileError("a tensor storage stream does not hold exactly one storage.")
    storage_type, _, count = declarations[0]
    if int.from_bytes(_read_exactly(stream, 8), "little", signed=True) != count:
        raise CorruptFileError("a tensor storage's element count does not match its declaration.")
    raw = _read_exactly(stream, count * storage_type.dtype.itemsize)
    return _LoadedStorage(_tensor_from_bytes(raw, storage_type.dtype))


def _numpy_scalar(dtype: Any, raw: Any) -> bool | int | float | complex:
    if not (isinstance(dtype, _NumpyDtype) and isinstance(raw, bytes)):
        raise CorruptFileError("it holds a numpy scalar that is not a plain number.")
    numpy_dtype = dtype.to_numpy()
    if len(raw) != numpy_dtype.itemsize:
        raise CorruptFileError(f"a numpy {numpy_dtype} scalar carries {len(raw)} bytes.")
    return np.frombuffer(raw, dtype=numpy_dtype)[0].item()


def _numpy_reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> _NumpyArray:
    if not isinstance(subtype, _NdarrayClass):
        raise CorruptFileError("it reconstructs a numpy object that is not a plain ndarray.")
    return _NumpyArray()


def _numpy_frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> _NumpyArray:
    # Pickle protocol 5 (Python 3.14's default) writes arrays as _frombuffer(bytes, dtype, shape, order).
    array = _NumpyArray()
    array.fill(shape, dtype, order == "F", bytes(buffer) if isinstance(buffer, bytearray) else buffer)
    return array


def _latin1_encode(text: Any, encoding: Any = "latin1") -> bytes:
    # Protocol 2 has no bytes opcode: bytes are written as _codecs.encode(str, 'latin1').
    if not (isinstance(text, str) and encoding in ("latin1", "latin-1")):
        raise CorruptFileError("it calls _codecs.encode with arguments no pickler writes.")
    return text.encode("latin1")


def _empty_bytes(*args: Any) -> bytes:
    # Protocol 2 writes b'' as a call of bytes() with no arguments.
    if args:
        raise CorruptFileError("it calls bytes() with arguments no pickler writes.")
    return b""


def _numpy_globals(package: str) -> dict[tuple[str, str], Any]:
    # NumPy 1 pickles name numpy.core, NumPy 2 pickles numpy._core.
    return {
        (f"{package}.multiarray", "scalar"): _AllowedCall(_numpy_scalar),
        (f"{package}.multiarray", "_reconstruct"): _AllowedCall(_numpy_reconstruct),
        (f"{package}.numeric", "_frombuffer"): _AllowedCall(_numpy_frombuffer),
    }


STORAGE_TYPE_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch", name): _StorageType(name, dtype) for name, dtype in STORAGE_DTYPES.items()
}

NETWORK_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _AllowedCall(_reconstruct_persistent_obj),
    ("torch._utils", "_rebuild_tensor_v2"): _AllowedCall(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_parameter"): _AllowedCall(_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _AllowedCall(_rebuild_parameter),
    ("torch.storage", "_load_from_bytes"): _AllowedCall(_storage_from_legacy_bytes),
    # Built-in types are immutable and build only containers; EasyDict is a dict with attribute access.
    ("collections", "OrderedDict"): dict,
    ("dnnlib.util", "EasyDict"): dict,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("builtins", "bytes"): _AllowedCall(_empty_bytes),
    ("__builtin__", "bytes"): _AllowedCall(_empty_bytes),
    ("_codecs", "encode"): _AllowedCall(_latin1_encode),
    ("numpy", "dtype"): _AllowedCall(_NumpyDtype),
    ("numpy", "ndarray"): _NdarrayClass(),
    **_numpy_globals("numpy.core"),
    **_numpy_globals("numpy._core"),
    **STORAGE_TYPE_GLOBALS,
}


# -- unpicklers ---------------------------------------------------------------------------------------------


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in `allowed`; persistent ids (storages) go to `load_storage` when given."""

    def __init__(
        self,
        file: BinaryIO,
        allowed: dict[tuple[str, str], Any],
        load_storage: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(file)
        self._allowed = allowed
        self._load_storage = load_storage

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            pass
        if module.startswith("dnnlib.tflib") or module == "tfutil":
            raise UnsafePickleError(
                f"it is a TensorFlow-era NVIDIA pickle (it refers to {printable(f'{module}.{name}', quote=False)}); "
                "this reader handles the PyTorch releases (StyleGAN2-ADA-PyTorch, StyleGAN3). Use the PyTorch "
                "release of the network."
            )
        raise UnsafePickleError(
            f"it refers to {printable(f'{module}.{name}', quote=False)}, which is not part of a network's "
            "weights; facegen refuses to run code from pickles. Use an official NVIDIA release file or a "
            "facegen .safetensors export instead."
        )

    def persistent_load(self, persistent_id: Any) -> Any:
        if self._load_storage is None:
            raise CorruptFileError("it holds a persistent reference where none belongs.")
        return self._load_storage(persistent_id)


def _load_plain_pickle(stream: BinaryIO) -> Any:
    """A pickle that may name no globals at all (the legacy stream's header and key list)."""
    return RestrictedUnpickler(stream, {}).load()


def _storage_declaration(persistent_id: Any) -> tuple[_StorageType, str, int]:
    """(type, key, element count) from a storage's persistent id: ('storage', type, key, location, numel[, view])."""
    if not (isinstance(persistent_id, tuple) and len(persistent_id) in (5, 6) and persistent_id[0] == "storage"):
        raise CorruptFileError("it holds a persistent reference that is not a tensor storage.")
    _, storage_type, key, _, count, *view = persistent_id
    if view and view[0] is not None:
        raise CorruptFileError("it holds a storage view (PyTorch < 0.4 format), which facegen does not read.")
    if not (isinstance(storage_type, _StorageType) and isinstance(key, str) and isinstance(count, int)):
        raise CorruptFileError("it holds a malformed tensor storage reference.")
    if not 0 <= count * storage_type.dtype.itemsize <= MAX_STORAGE_BYTES:
        raise CorruptFileError(
            f"a tensor storage declares {count} {storage_type.name} elements, beyond any real network "
            f"(cap {MAX_STORAGE_BYTES >> 30} GiB)."
        )
    return storage_type, key, count


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise CorruptFileError(f"a tensor storage ends early: {len(data)} of {size} bytes are present.")
    return data


def _tensor_from_bytes(raw: bytes, dtype: torch.dtype) -> torch.Tensor:
    if not raw:
        return torch.empty(0, dtype=dtype)
    return torch.frombuffer(bytearray(raw), dtype=dtype)


def _is_int_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(type(item) is int and item >= 0 for item in value)


def printable(value: Any, quote: bool = True, limit: int = 80) -> str:
    """A value from the file, safe to put in a one-line message."""
    text = repr(value) if quote else str(value)
    text = text.encode("ascii", "backslashreplace").decode().replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- records to data ----------------------------------------------------------------------------------------


class DataBuilder:
    """Turns what the unpickler produced into tensors, numpy arrays and PersistentModules, checking each."""

    def __init__(self) -> None:
        self._built: dict[int, Any] = {}  # id(record) -> result, so shared objects stay shared

    def value(self, item: Any) -> Any:
        if isinstance(item, (_TensorRecord, _PersistentRecord)):
            if id(item) not in self._built:
                self._built[id(item)] = self.tensor(item) if isinstance(item, _TensorRecord) else self.module(item)
            return self._built[id(item)]
        if isinstance(item, _NumpyArray):
            if item.array is None:
                raise CorruptFileError("it holds a numpy array without data.")
            return item.array
        if isinstance(item, _NumpyDtype):
            return item.to_numpy()
        if isinstance(item, (_AllowedCall, _StorageType, _NdarrayClass, _LoadedStorage, type)):
            raise CorruptFileError("it holds a reference to a function, type or storage where data belongs.")
        if isinstance(item, dict):
            return {self.value(key): self.value(entry) for key, entry in item.items()}
        if isinstance(item, list):
            return [self.value(entry) for entry in item]
        if isinstance(item, tuple):
            return tuple(self.value(entry) for entry in item)
        if isinstance(item, (set, frozenset)):
            return type(item)(self.value(entry) for entry in item)
        if item is None or isinstance(item, (bool, int, float, complex, str, bytes, bytearray)):
            return item
        raise CorruptFileError(f"it holds an object of type {type(item).__name__}, which is not weight data.")

    @staticmethod
    def tensor(record: _TensorRecord) -> torch.Tensor:
        return record.storage.values.as_strided(record.size, record.stride, record.offset)

    def module(self, record: _PersistentRecord) -> PersistentModule:
        meta = record.meta
        if not isinstance(meta, dict):
            raise CorruptFileError("it holds a persistent object without its description.")
        kind, version = meta.get("type"), meta.get("version")
        if kind != "class" or version != PERSISTENCE_VERSION:
            raise CorruptFileError(
                f"it holds a persistent object of type {printable(kind)}, version {printable(version)}; facegen "
                f"reads NVIDIA's 'class' objects of version {PERSISTENCE_VERSION} (StyleGAN2-ADA-PyTorch, StyleGAN3)."
            )
        class_name, module_src, state = meta.get("class_name"), meta.get("module_src"), meta.get("state")
        if not (isinstance(class_name, str) and class_name.isidentifier()):
            raise CorruptFileError(f"it holds a persistent object with class name {printable(class_name)}.")
        if not isinstance(module_src, str) or not isinstance(state, dict):
            raise CorruptFileError(f"its {class_name} object has no source text or no state.")
        if not all(isinstance(name, str) for name in state):
            raise CorruptFileError(f"its {class_name} object has non-text attribute names.")
        init_kwargs = self.value(state.get("_init_kwargs", {}))
        init_args = self.value(state.get("_init_args", ()))
        if not isinstance(init_kwargs, dict) or not isinstance(init_args, tuple):
            raise CorruptFileError(f"its {class_name} object has malformed constructor arguments.")
        return PersistentModule(
            class_name=class_name,
            # Names starting with '_' are torch's and persistence's bookkeeping (hooks, _init_kwargs, ...).
            attributes={
                name: self.value(entry)
                for name, entry in state.items()
                if not name.startswith("_") and name != "training"
            },
            parameters=self.table(state, "_parameters", torch.Tensor, class_name),
            buffers=self.table(state, "_buffers", torch.Tensor, class_name),
            modules=self.table(state, "_modules", PersistentModule, class_name),
            init_args=init_args,
            init_kwargs=init_kwargs,
            module_src_sha256=hashlib.sha256(module_src.encode("utf-8", "surrogatepass")).hexdigest(),
        )

    def table(self, state: dict, key: str, kind: type, class_name: str) -> dict[str, Any]:
        entries = self.value(state.get(key, {}))
        if not isinstance(entries, dict) or not all(
            isinstance(name, str) and (entry is None or isinstance(entry, kind)) for name, entry in entries.items()
        ):
            raise CorruptFileError(f"its {class_name} object's {key} are not {kind.__name__}s by name.")
        return entries


# -- reading files ------------------------------------------------------------------------------------------


def read_network_pickle(path: str | Path) -> dict[str, Any]:
    """The snapshot dict of an NVIDIA network pickle, networks as `PersistentModule`s. Runs no code from it.

    Missing `D`, `augment_pipe` and `training_set_kwargs` read as None, as in NVIDIA's loader; a file without a
    `G_ema` or `G` network is refused.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ModelNotFoundError(f"{path} does not exist. Check the path.") from None
    if size == 0:
        raise CorruptFileError(f"{path.name} is empty (0 bytes). Fetch or copy it again.")
    try:
        with open(path, "rb") as file:
            is_zip = file.read(4) == ZIP_MAGIC
        records = _load_torch_zip(path) if is_zip else _load_pickle_file(path)
        snapshot = DataBuilder().value(records)
    except CorruptFileError as error:
        raise CorruptFileError(
            f"{path.name}: {error} Fetch the file again from a trusted source; if that does not help, facegen "
            "cannot read it."
        ) from None
    except FacegenError as error:
        raise type(error)(f"{path.name}: {error}") from None
    except EOFError:
        raise CorruptFileError(f"{path.name} ends early: it is truncated. Fetch or copy it again.") from None
    except Exception as error:  # any failure parsing an untrusted file is the file's fault, not a bug
        detail = printable(f"{type(error).__name__}: {error}", quote=False, limit=160)
        if "truncated" in str(error):
            raise CorruptFileError(f"{path.name} ends early: it is truncated. Fetch or copy it again.") from None
        raise CorruptFileError(
            f"{path.name} is damaged or is not an NVIDIA network pickle ({detail}). Fetch it again, or check that it "
            "is a StyleGAN2-ADA / StyleGAN3 .pkl."
        ) from None
    return _check_snapshot(snapshot, path.name)


def _load_pickle_file(path: Path) -> Any:
    with open(path, "rb") as file:
        return RestrictedUnpickler(file, NETWORK_GLOBALS).load()


def _load_torch_zip(path: Path) -> Any:
    """A `torch.save` zip archive: `<root>/data.pkl` plus one uncompressed `<root>/data/<key>` per storage."""
    archive_bytes = path.stat().st_size
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.count("/") == 1 and name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CorruptFileError("it is a zip file but not a PyTorch checkpoint (no single data.pkl).")
        root = pickles[0].removesuffix("data.pkl")
        if f"{root}byteorder" in archive.namelist() and archive.read(f"{root}byteorder").strip() != b"little":
            raise CorruptFileError("it was written on a big-endian machine, which facegen does not read.")
        storages: dict[str, _LoadedStorage] = {}

        def read_entry(name: str, expected_bytes: int | None) -> zipfile.ZipInfo:
            try:
                info = archive.getinfo(name)
            except KeyError:
                raise CorruptFileError(f"its archive lacks {printable(name)}.") from None
            # PyTorch stores every record uncompressed; a compressed one could expand far beyond the file.
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > archive_bytes:
                raise CorruptFileError(f"its archive record {printable(name)} is compressed or oversized.")
            if expected_bytes is not None and info.file_size != expected_bytes:
                raise CorruptFileError(
                    f"a tensor storage declares {expected_bytes} bytes but its record holds {info.file_size}."
                )
            return info

        def load_storage(persistent_id: Any) -> _LoadedStorage:
            storage_type, key, count = _storage_declaration(persistent_id)
            if key not in storages:
                info = read_entry(f"{root}data/{key}", count * storage_type.dtype.itemsize)
                storages[key] = _LoadedStorage(_tensor_from_bytes(archive.read(info), storage_type.dtype))
            if storages[key].values.dtype != storage_type.dtype:
                raise CorruptFileError("one tensor storage is declared with two element types.")
            return storages[key]

        with archive.open(read_entry(pickles[0], None)) as data:
            return RestrictedUnpickler(data, NETWORK_GLOBALS, load_storage).load()


def _check_snapshot(snapshot: Any, name: str) -> dict[str, Any]:
    not_a_network = "It is not a StyleGAN2-ADA / StyleGAN3 network pickle."
    if not isinstance(snapshot, dict):
        raise CorruptFileError(
            f"{name} holds an object of type {type(snapshot).__name__}, not a training snapshot dict with G_ema. "
            f"{not_a_network}"
        )
    if not any(isinstance(snapshot.get(key), PersistentModule) for key in ("G_ema", "G")):
        keys = ", ".join(printable(key) for key in list(snapshot)[:8]) or "none"
        raise CorruptFileError(f"{name} has no 'G_ema' or 'G' network (keys: {keys}). {not_a_network}")
    return {key: None for key in NETWORK_KEYS} | snapshot


# -- generators ---------------------------------------------------------------------------------------------

# family -> (module, function(g: PersistentModule) -> (config, state_dict)) mapping NVIDIA names onto ours
CONVERTERS: dict[str, tuple[str, str]] = {
    "stylegan2": ("facegen.formats.nvidia_stylegan2", "convert_stylegan2"),
    "stylegan3": ("facegen.formats.nvidia_stylegan3", "convert_stylegan3"),
}


def generator_family(g: PersistentModule) -> str:
    """'stylegan2' or 'stylegan3', from the network's structure (never from its source text)."""
    if g.class_name != "Generator":
        raise CorruptFileError(f"The network is a {g.class_name}, not a Generator.")
    synthesis = g.modules.get("synthesis")
    if synthesis is None:
        raise CorruptFileError("The Generator has no synthesis network; it is not a StyleGAN2/3 generator.")
    if "input" in synthesis.modules or "layer_names" in synthesis.attributes:
        return "stylegan3"
    first_block = synthesis.modules.get("b4")
    if first_block is not None and first_block.class_name == "SynthesisBlock":
        return "stylegan2"
    raise CorruptFileError(
        "The Generator's synthesis network is neither StyleGAN2 (blocks b4, b8, ...) nor StyleGAN3 (an input "
        "layer and layer_names); facegen cannot run it."
    )


def describe_network(g: PersistentModule) -> dict[str, Any]:
    """What the CLI and app show about a generator: family, variant, sizes and its constructor settings."""
    family = generator_family(g)
    synthesis = g.find("synthesis")
    layers = [module for _, module in synthesis.named_modules() if "conv_clamp" in module.attributes]
    if family == "stylegan3":
        radial = any(layer.attributes.get("down_radial") for layer in layers)
        details = {
            "variant": "stylegan3-r" if radial else "stylegan3-t",
            "conv_kernel": layers[0].attributes.get("conv_kernel") if layers else None,
        }
    else:
        first_block = synthesis.find("b4")
        # Only the StyleGAN3 repository's StyleGAN2 blocks record fused_modconv_default.
        from_ada = "fused_modconv_default" not in first_block.attributes
        details = {
            "variant": "stylegan2-ada" if from_ada else "stylegan2",
            "architecture": first_block.attributes.get("architecture"),
        }
    init_kwargs = {key: value for key, value in g.init_kwargs.items() if key != "synthesis_kwargs"}
    # StyleGAN2-ADA nests the synthesis settings; the StyleGAN3 repository passes them flat.
    nested = g.init_kwargs.get("synthesis_kwargs")
    init_kwargs |= nested if isinstance(nested, dict) else {}
    return {
        "family": family,
        **details,
        "resolution": _attribute(g, "img_resolution"),
        "img_channels": _attribute(g, "img_channels"),
        "z_dim": _attribute(g, "z_dim"),
        "w_dim": _attribute(g, "w_dim"),
        "c_dim": _attribute(g, "c_dim"),
        "num_ws": _attribute(g, "num_ws"),
        "mapping_layers": _attribute(g.find("mapping"), "num_layers"),
        "conv_clamp": layers[0].attributes["conv_clamp"] if layers else None,
        "num_parameters": sum(
            tensor.numel()
            for _, module in g.named_modules()
            for tensor in module.parameters.values()
            if tensor is not None
        ),
        "init_kwargs": init_kwargs,
    }


def _attribute(module: PersistentModule, name: str) -> Any:
    try:
        return module.attributes[name]
    except KeyError:
        raise CorruptFileError(
            f"The {module.class_name} has no attribute {name!r}; the file is not a StyleGAN2/3 network."
        ) from None


def load_nvidia_generator(
    path: str | Path, model_id: str | None = None, device: str = "cpu"
) -> Generator:
    """An NVIDIA StyleGAN2/2-ADA/3 pickle as a facegen Generator (G_ema, else G), running facegen's own code."""
    path = Path(path)
    snapshot = read_network_pickle(path)
    g = snapshot["G_ema"] if isinstance(snapshot["G_ema"], PersistentModule) else snapshot["G"]
    description = describe_network(g)
    family = description["family"]
    module_name, function_name = CONVERTERS[family]
    config, state_dict = getattr(importlib.import_module(module_name), function_name)(g)
    network = build_generator(family, config)
    try:
        network.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        detail = printable(" ".join(str(error).split()), quote=False, limit=300)
        raise CorruptFileError(f"{path.name} does not fit facegen's {family} network: {detail}") from None
    c_dim = description["c_dim"]
    info = ModelInfo(
        model_id=model_id or path.stem,
        family=family,
        z_dim=description["z_dim"],
        resolution=description["resolution"],
        c_dim=c_dim,
        label_names=tuple(f"class {index}" for index in range(c_dim)),
        has_w_space=True,
        has_noise_inputs=family == "stylegan2",
        description=f"NVIDIA {description['variant']} network from {path.name}",
        extra=description,
    )
    return Generator(network, info, device)
