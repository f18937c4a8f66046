"""Hostile and broken files: each is refused with a one-line FacegenError and leaves no trace.

Every load runs in an empty working directory with the process-starting functions replaced by recorders; the
payloads would create a file there or start a process if anything in them ran.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import os
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from facegen.errors import CorruptFileError, FacegenError, UnsafePickleError
from facegen.formats.nvidia_pickle import read_network_pickle
from tests.formats.nvidia_pickle_forge import (
    LEGACY_TORCH_MAGIC,
    Call,
    Global,
    forge,
    iter_calls,
    legacy_storage_stream,
    take_apart,
    tensor_call,
    write_zip,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvidia"
MARKER = "pwned"
SHELL_COMMAND = f"touch {MARKER}"
PYTHON_COMMAND = f"open({MARKER!r}, 'w').write('ran')"
PROCESS_STARTERS = [
    (os, "system"),
    (os, "popen"),
    (os, "fork"),
    (os, "posix_spawn"),
    (os, "posix_spawnp"),
    (os, "execv"),
    (os, "execve"),
    (subprocess, "Popen"),
]


class Sandbox:
    """An empty working directory plus a record of every attempt to start a process."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files = root / "files"
        self.cwd = root / "cwd"
        self.files.mkdir()
        self.cwd.mkdir()
        monkeypatch.chdir(self.cwd)
        self.process_calls: list[str] = []
        for module, name in PROCESS_STARTERS:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, self.recorder(f"{module.__name__}.{name}"))

    def recorder(self, name: str) -> Callable:
        def record(*args: object, **kwargs: object) -> None:
            self.process_calls.append(name)

        return record

    def write(self, name: str, content: bytes) -> Path:
        path = self.files / name
        path.write_bytes(content)
        return path

    def refuse(self, path: Path, error_type: type[FacegenError] = FacegenError) -> str:
        """Load `path`, expecting a refusal and no side effect; return the message."""
        with pytest.raises(error_type) as caught:
            read_network_pickle(path)
        message = str(caught.value)
        assert "\n" not in message and message.startswith(path.name), message
        assert list(self.cwd.iterdir()) == [], "the load created files"
        assert not (self.files / MARKER).exists()
        assert self.process_calls == [], "the load tried to start a process"
        return message


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    return Sandbox(tmp_path, monkeypatch)


def fixture_tree(name: str = "sg2") -> dict:
    return take_apart(FIXTURES / f"{name}.pkl")


def hidden_in_fixture(payload: Call) -> dict:
    """A real snapshot with `payload` as one of the generator's attributes, deep in the tree."""
    tree = fixture_tree()
    mapping_meta = tree["G_ema"].args[0]["state"]["_modules"]["mapping"].args[0]
    mapping_meta["state"]["w_avg_beta"] = payload
    return tree


def assert_refuses_global(message: str, qualified_name: str) -> None:
    assert f"refers to {qualified_name}," in message
    assert "facegen refuses to run code from pickles" in message


@pytest.mark.parametrize(
    ("module", "name", "args"),
    [
        ("os", "system", (SHELL_COMMAND,)),
        ("posix", "system", (SHELL_COMMAND,)),
        ("builtins", "eval", (PYTHON_COMMAND,)),
        ("builtins", "exec", (PYTHON_COMMAND,)),
        ("subprocess", "Popen", (["touch", MARKER],)),
        ("subprocess", "check_output", (["touch", MARKER],)),
    ],
)
@pytest.mark.parametrize("protocol", [2, 4])
def test_code_calls_are_refused_by_name(sandbox: Sandbox, module: str, name: str, args: tuple, protocol: int) -> None:
    path = sandbox.write("hostile.pkl", forge(hidden_in_fixture(Global(module, name)(*args)), protocol=protocol))
    message = sandbox.refuse(path, UnsafePickleError)
    assert_refuses_global(message, f"{module}.{name}")


def test_a_bare_code_call_at_the_top_is_refused(sandbox: Sandbox) -> None:
    path = sandbox.write("top.pkl", forge(Global("os", "system")(SHELL_COMMAND)))
    assert_refuses_global(sandbox.refuse(path, UnsafePickleError), "os.system")


def test_a_getattr_chain_from_an_allowed_global_is_refused(sandbox: Sandbox) -> None:
    allowed = Global("collections", "OrderedDict")
    chain = Global("builtins", "getattr")(Global("builtins", "getattr")(allowed, "__init__"), "__globals__")
    path = sandbox.write("getattr.pkl", forge(hidden_in_fixture(chain)))
    assert_refuses_global(sandbox.refuse(path, UnsafePickleError), "builtins.getattr")


@pytest.mark.parametrize(
    ("module", "dotted_name"),
    [("torch._utils", "_rebuild_tensor_v2.__globals__"), ("collections", "OrderedDict.__init__")],
)
def test_dotted_attribute_paths_on_allowed_modules_are_refused(sandbox: Sandbox, module: str, dotted_name: str) -> None:
    # Protocol 4's STACK_GLOBAL lets a default unpickler walk attributes; facegen matches whole names only.
    path = sandbox.write("dotted.pkl", forge(hidden_in_fixture(Global(module, dotted_name)(SHELL_COMMAND)), protocol=4))
    assert_refuses_global(sandbox.refuse(path, UnsafePickleError), f"{module}.{dotted_name}")


def test_rewiring_an_allowed_global_through_build_is_refused(sandbox: Sandbox) -> None:
    # GLOBAL torch._utils._rebuild_tensor_v2; BUILD (None, {'function': os.system}); STOP
    payload = (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x08\x00\x00\x00function"
        b"cos\nsystem\ns\x86b."
    )
    refused = sandbox.refuse(sandbox.write("rewire.pkl", payload), UnsafePickleError)
    assert_refuses_global(refused, "os.system")
    harmless = payload.replace(b"cos\nsystem\n", b"K\x01")
    assert "damaged or is not an NVIDIA network pickle" in sandbox.refuse(sandbox.write("rewire2.pkl", harmless))
    assert read_network_pickle(FIXTURES / "sg2.pkl")["G_ema"].state_dict(), "the reader still works afterwards"


@pytest.mark.parametrize("poisoned_pickle", ["storage", "header"])
def test_a_reduce_hidden_inside_tensor_storage_bytes_is_refused(sandbox: Sandbox, poisoned_pickle: str) -> None:
    code = forge(Global("os", "system")(SHELL_COMMAND), protocol=2)
    poison = {"main_pickle": code} if poisoned_pickle == "storage" else {"header": code}
    payload = legacy_storage_stream(torch.arange(4.0), **poison)
    tree = fixture_tree()
    tree["G_ema"].args[0]["state"]["_modules"]["mapping"].args[0]["state"]["_buffers"]["w_avg"] = tensor_call(
        payload, (4,), (1,)
    )
    path = sandbox.write("storage.pkl", forge(tree))
    assert_refuses_global(sandbox.refuse(path, UnsafePickleError), "os.system")


def test_module_src_is_hashed_and_never_run(sandbox: Sandbox) -> None:
    tree = fixture_tree("sg3t")
    evil_source = f"import os\nos.system({SHELL_COMMAND!r})\n{PYTHON_COMMAND}\n"
    persistent_objects = list(iter_calls(tree, "_reconstruct_persistent_obj"))
    for call in persistent_objects:
        call.args[0]["module_src"] = evil_source
    path = sandbox.write("module_src.pkl", forge(tree))

    networks = read_network_pickle(path)

    assert list(sandbox.cwd.iterdir()) == [] and sandbox.process_calls == []
    generator = networks["G_ema"]
    assert {module.module_src_sha256 for _, module in generator.named_modules()} == {
        hashlib.sha256(evil_source.encode()).hexdigest()
    }
    original = read_network_pickle(FIXTURES / "sg3t.pkl")["G_ema"].state_dict()
    assert all(torch.equal(tensor, original[name]) for name, tensor in generator.state_dict().items())


def test_the_real_fixtures_load_with_no_nvidia_module_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[str] = []

    class RecordNvidiaImports(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname: str, path: object, target: object = None) -> None:
            if fullname.split(".")[0] in ("dnnlib", "torch_utils", "training", "legacy"):
                attempts.append(fullname)

    monkeypatch.setattr(sys, "meta_path", [RecordNvidiaImports(), *sys.meta_path])
    for name in ("ada", "sg2", "sg3r", "sg3t"):
        assert read_network_pickle(FIXTURES / f"{name}.pkl")["G_ema"].class_name == "Generator"
    assert attempts == []
    assert not any(module.split(".")[0] in ("dnnlib", "torch_utils") for module in sys.modules)


def test_persistent_objects_of_another_type_or_version_are_refused(sandbox: Sandbox) -> None:
    for key, value, expected in [("version", 5, "version 5"), ("type", "function", "type 'function'")]:
        tree = fixture_tree()
        tree["G_ema"].args[0][key] = value
        message = sandbox.refuse(sandbox.write(f"{key}.pkl", forge(tree)), CorruptFileError)
        assert expected in message and "facegen reads NVIDIA's 'class' objects of version 6" in message


def test_a_truncated_file_is_refused(sandbox: Sandbox) -> None:
    whole = (FIXTURES / "sg2.pkl").read_bytes()
    message = sandbox.refuse(sandbox.write("half.pkl", whole[: len(whole) // 2]), CorruptFileError)
    assert "ends early: it is truncated" in message


def test_an_empty_file_is_refused(sandbox: Sandbox) -> None:
    assert "is empty (0 bytes)" in sandbox.refuse(sandbox.write("empty.pkl", b""), CorruptFileError)


def test_random_bytes_are_refused(sandbox: Sandbox) -> None:
    noise = torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    for name, content in [("noise.pkl", bytes(noise.tolist())), ("noise2.pkl", b"\x80\x04" + bytes(noise.tolist()))]:
        message = sandbox.refuse(sandbox.write(name, content), CorruptFileError)
        assert "damaged or is not an NVIDIA network pickle" in message and "Fetch it again" in message


def test_a_tensor_declaring_an_absurd_size_is_refused_without_allocating_it(sandbox: Sandbox) -> None:
    tree = fixture_tree()
    parameter = next(iter_calls(tree, "_rebuild_tensor_v2"))
    storage, offset, _, _, *rest = parameter.args
    parameter.args = (storage, offset, (10**12,), (1,), *rest)
    message = sandbox.refuse(sandbox.write("huge.pkl", forge(tree)), CorruptFileError)
    assert "a tensor declares shape (1000000000000,)" in message and "its storage holds" in message


def test_a_zero_stride_tensor_larger_than_its_storage_is_refused(sandbox: Sandbox) -> None:
    tree = {"G_ema": tensor_call(legacy_storage_stream(torch.ones(1)), (10**6, 10**6), (0, 0))}
    message = sandbox.refuse(sandbox.write("broadcast.pkl", forge(tree)), CorruptFileError)
    assert "needs 1000000000000 values, but its storage holds 1" in message


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (legacy_storage_stream(torch.ones(4), record_count=2**44), "element count does not match its declaration"),
        (legacy_storage_stream(torch.ones(4), declared_numel=6, record_count=6), "ends early: 16 of 24 bytes"),
        (legacy_storage_stream(torch.ones(4))[:-4], "ends early: 12 of 16 bytes"),
        (legacy_storage_stream(torch.ones(4), declared_numel=10**12), "declares 1000000000000 FloatStorage elements"),
    ],
)
def test_a_storage_whose_sizes_disagree_with_its_bytes_is_refused(
    sandbox: Sandbox, payload: bytes, expected: str
) -> None:
    tree = {"G_ema": tensor_call(payload, (4,), (1,))}
    message = sandbox.refuse(sandbox.write("storage.pkl", forge(tree)), CorruptFileError)
    assert expected in message


def test_a_torch_zip_checkpoint_whose_data_pkl_runs_code_is_refused(sandbox: Sandbox) -> None:
    path = sandbox.files / "checkpoint.pt"
    write_zip(path, forge({"G_ema": Global("os", "system")(SHELL_COMMAND)}, protocol=2))
    assert_refuses_global(sandbox.refuse(path, UnsafePickleError), "os.system")


def test_a_torch_zip_with_a_compressed_record_is_refused(sandbox: Sandbox) -> None:
    path = sandbox.files / "compressed.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"G_ema": None}, protocol=2))
    assert "compressed or oversized" in sandbox.refuse(path, CorruptFileError)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([1, 2, 3], "holds an object of type list, not a training snapshot dict"),
        (LEGACY_TORCH_MAGIC, "holds an object of type int, not a training snapshot dict"),
        ({"D": None, "epoch": 3}, "has no 'G_ema' or 'G' network (keys: 'D', 'epoch')"),
    ],
)
def test_pickles_that_are_not_snapshots_are_refused(sandbox: Sandbox, content: object, expected: str) -> None:
    message = sandbox.refuse(sandbox.write("other.pkl", pickle.dumps(content)), CorruptFileError)
    assert expected in message


def test_the_sandbox_notices_payloads_that_do_run(sandbox: Sandbox) -> None:
    """The checks above can fail: Python's own unpickler runs these payloads, and the sandbox sees it."""
    pickle.loads(forge(Global("os", "system")(SHELL_COMMAND)))
    pickle.loads(forge(Global("subprocess", "Popen")(["touch", MARKER])))
    assert sandbox.process_calls == ["os.system", "subprocess.Popen"]
    pickle.loads(forge(Global("builtins", "exec")(PYTHON_COMMAND)))
    assert [path.name for path in sandbox.cwd.iterdir()] == [MARKER]


def test_a_tensorflow_era_pickle_gets_its_own_message(sandbox: Sandbox) -> None:
    path = sandbox.write("karras2019.pkl", forge((Global("dnnlib.tflib.network", "Network")(),) * 3, protocol=2))
    message = sandbox.refuse(path, UnsafePickleError)
    assert "TensorFlow-era NVIDIA pickle" in message and "dnnlib.tflib.network.Network" in message
