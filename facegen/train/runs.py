"""The run directory: what a training run writes, and how the registry, the CLI and the Training page read it.

    RUN_DIR/config.json                  the resolved TrainConfig
    RUN_DIR/metrics.jsonl                one JSON object per logged step
    RUN_DIR/samples/step-00000200.png    grid of the fixed latent batch, with its recipe in the PNG
    RUN_DIR/checkpoints/step-00000200/   generator.safetensors + .json (loadable alone), generator_ema.* when the
                                         run keeps a moving average, discriminator.safetensors, and the
                                         training state (optimizers, RNG states, step) as .safetensors + .json
    RUN_DIR/status.json                  {state, pid, host, started, updated, step, total_steps, message}
    RUN_DIR/marked.json                  steps the user marked to keep
    RUN_DIR/stop                         present: the loop stops at the next step with a final checkpoint
    RUN_DIR/.lock                        locked (flock) by the process training the run, holding its pid

A checkpoint directory is filled under a hidden temporary name and renamed into place, so a checkpoint that is
visible is complete; hidden (dot) entries are never listed. One process writes a run at a time (`writer_lock`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facegen.errors import FacegenError, ModelNotFoundError
from facegen.images import write_atomically
from facegen.spec import ModelSpec, RunRef

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
STATUS_FILE = "status.json"
MARKED_FILE = "marked.json"
STOP_FILE = "stop"
LOCK_FILE = ".lock"
SAMPLES_DIR = "samples"
CHECKPOINTS_DIR = "checkpoints"
GENERATOR_FILE = "generator.safetensors"
GENERATOR_EMA_FILE = "generator_ema.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
TRAINING_STATE_TENSORS = "training_state.safetensors"
TRAINING_STATE_JSON = "training_state.json"
STEP_NAME = re.compile(r"step-(\d{8})(\.png)?")
# A 'running' run whose status was not refreshed for this long is taken for dead (killed, machine gone).
HEARTBEAT_STALE_SECONDS = 600
RUN_STATES = ("running", "finished", "stopped", "crashed")


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def parse_step(name: str) -> int | None:
    match = STEP_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


# -- finding runs -----------------------------------------------------------------------------------------------
def default_runs_root() -> Path:
    """`runs/` in the current folder when there is one, else the checkout's `runs/` (which ships the starter)."""
    configured = os.environ.get("FACEGEN_RUNS")
    if configured:
        return Path(configured).expanduser()
    here = Path("runs")
    return here if here.is_dir() else REPO_ROOT / "runs"


def is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def resolve_run(run_ref: str, runs_root: str | Path | None = None) -> Path:
    """A run's directory from a name under the runs folder or a path to a run directory."""
    root = Path(runs_root) if runs_root is not None else default_runs_root()
    for candidate in (Path(run_ref).expanduser(), root / run_ref):
        if is_run_dir(candidate):
            return candidate
    names = [summary.name for summary in list_runs(root)]
    known = f"Runs in {root}: {', '.join(names)}." if names else f"There are no runs in {root} yet."
    raise ModelNotFoundError(
        f"No training run {run_ref!r} (a run directory holds {CONFIG_FILE}). {known} Train one with "
        "`python -m facegen train ... --out runs/NAME`, or give the run directory's path."
    )


# -- one writer -------------------------------------------------------------------------------------------------
@contextmanager
def writer_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run directory for this process, creating it if needed; a run another process holds is refused.

    An flock is released by the OS when its process ends however it ends (kill -9 included), so a crashed run
    never stays locked.
    """
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise FacegenError(
            f"Cannot write the run directory {run_dir}: {error.strerror}. Choose another --out, or fix its permissions."
        ) from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _held_elsewhere(run_dir, descriptor) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        check_writable(run_dir)
        yield
    finally:
        os.close(descriptor)


def refuse_if_held(run_dir: Path) -> None:
    """Refuse a run another process is training, naming that process; only tests the lock, so writes nothing."""
    try:
        descriptor = os.open(run_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return  # never locked, so nobody trains it
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _held_elsewhere(run_dir, descriptor) from None
        fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _held_elsewhere(run_dir: Path, lock_descriptor: int) -> FacegenError:
    holder = os.pread(lock_descriptor, 256, 0).decode(errors="replace").strip() or "?"
    return FacegenError(
        f"Run {run_dir} is being trained by process {holder}. Wait for it to end, or stop it (Stop on the "
        f"Training page, or `touch {run_dir / STOP_FILE}`) and then --resume it."
    )


def check_writable(run_dir: Path) -> None:
    """Refuse a run whose folders cannot be written now, not after its first training steps."""
    for folder in (run_dir, run_dir / CHECKPOINTS_DIR, run_dir / SAMPLES_DIR):
        if not folder.exists():
            continue
        try:
            probe = folder / f".write-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            probe.mkdir()
            probe.rmdir()
        except OSError as error:
            raise FacegenError(
                f"{folder} is not writable ({error.strerror}); training writes its checkpoints and sample grids "
                "there. Fix its permissions, or copy the run to a folder you can write and resume that."
            ) from None


# -- checkpoints ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckpointSummary:
    step: int
    path: Path
    has_ema: bool
    resumable: bool  # holds the discriminator and training state, not only the generator
    marked: bool

    @property
    def generator_path(self) -> Path:
        """The weights `run:NAME@STEP` loads: the moving-average generator when the run keeps one."""
        return self.path / (GENERATOR_EMA_FILE if self.has_ema else GENERATOR_FILE)


def list_checkpoints(run_dir: str | Path) -> list[CheckpointSummary]:
    """Complete checkpoints, oldest first."""
    run_dir = Path(run_dir)
    folder = run_dir / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    marked = set(read_marked(run_dir))
    found = []
    for entry in folder.iterdir():
        step = parse_step(entry.name)
        if step is None or not (entry / GENERATOR_FILE).is_file():
            continue
        resumable = all((entry / name).is_file() for name in (DISCRIMINATOR_FILE, TRAINING_STATE_TENSORS, TRAINING_STATE_JSON))
        found.append(CheckpointSummary(step, entry, (entry / GENERATOR_EMA_FILE).is_file(), resumable, step in marked))
    return sorted(found, key=lambda checkpoint: checkpoint.step)


def find_checkpoint(run_ref: str, step: int | None = None, runs_root: str | Path | None = None) -> CheckpointSummary:
    """A run's checkpoint at `step`, or its newest when `step` is None."""
    run_dir = resolve_run(run_ref, runs_root)
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        raise ModelNotFoundError(
            f"Run {run_ref!r} has no checkpoint yet. The first one is written after "
            f"{read_config(run_dir).get('checkpoint_every', '?')} steps; wait for it, or resume the run."
        )
    if step is None:
        return checkpoints[-1]
    chosen = next((checkpoint for checkpoint in checkpoints if checkpoint.step == step), None)
    if chosen is None:
        steps = ", ".join(str(checkpoint.step) for checkpoint in checkpoints)
        raise ModelNotFoundError(
            f"Run {run_ref!r} has no checkpoint at step {step}: it was pruned or deleted (training keeps the newest "
            f"few and those marked Keep), or never written. The run has checkpoints at steps {steps}: name one "
            f"(e.g. {RunRef(run_ref, checkpoints[-1].step)}), and mark those you want to come back to as Keep on "
            "the Training page."
        )
    return chosen


def find_generator_checkpoint(run_ref: str, step: int | None = None, runs_root: str | Path | None = None) -> Path:
    """The generator weights of a run's checkpoint (latest when `step` is None); the EMA generator when kept."""
    return find_checkpoint(run_ref, step, runs_root).generator_path


def write_checkpoint_dir(run_dir: Path, step: int, fill: Callable[[Path], None]) -> Path:
    """Let `fill` write a checkpoint into a hidden folder, then rename it into place: all or nothing."""
    folder = run_dir / CHECKPOINTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / step_name(step)
    staging = folder / f".{step_name(step)}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    fill(staging)
    for file in staging.iterdir():
        _fsync(file)
    if final.exists():
        _remove_dir(final)
    os.replace(staging, final)
    _fsync(folder)
    return final


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_dir(path: Path) -> None:
    """Hide first, then delete, so a half-deleted checkpoint is never visible."""
    hidden = path.with_name(f".{path.name}.deleting-{os.getpid()}")
    os.replace(path, hidden)
    shutil.rmtree(hidden, ignore_errors=True)


def remove_unfinished_writes(run_dir: Path) -> None:
    """Clear what a killed process left half-written: staging and half-deleted checkpoint folders, partial files.

    Only the holder of `writer_lock` calls this: another writer's staging folders would look the same.
    """
    folder = run_dir / CHECKPOINTS_DIR
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name.startswith("."):
                shutil.rmtree(entry, ignore_errors=True)
    for partial in run_dir.glob(".*.partial"):
        partial.unlink(missing_ok=True)


def prune_checkpoints(run_dir: Path, keep_last: int) -> list[int]:
    """Delete checkpoints beyond the newest `keep_last`, sparing marked ones. Returns the deleted steps."""
    checkpoints = list_checkpoints(run_dir)
    doomed = [checkpoint for checkpoint in checkpoints[:-keep_last] if not checkpoint.marked]
    for checkpoint in doomed:
        _remove_dir(checkpoint.path)
    return [checkpoint.step for checkpoint in doomed]


def read_marked(run_dir: str | Path) -> list[int]:
    path = Path(run_dir) / MARKED_FILE
    if not path.is_file():
        return []
    try:
        return sorted(int(step) for step in json.loads(path.read_text()).get("steps", []))
    except (json.JSONDecodeError, TypeError, ValueError, AttributeError):
        return []


def mark_checkpoint(run_dir: str | Path, step: int, keep: bool = True) -> list[int]:
    """Mark (or unmark) a checkpoint so pruning keeps it. Returns the marked steps."""
    run_dir = Path(run_dir)
    if keep and step not in {checkpoint.step for checkpoint in list_checkpoints(run_dir)}:
        raise FacegenError(f"Run {run_dir.name} has no checkpoint at step {step} to mark; pick one it lists.")
    steps = set(read_marked(run_dir))
    steps = steps | {step} if keep else steps - {step}
    write_atomically(run_dir / MARKED_FILE, json.dumps({"steps": sorted(steps)}).encode())
    return sorted(steps)


def keep_recipe_checkpoint(spec: ModelSpec) -> None:
    """Mark the run checkpoint that a saved recipe names (`run:NAME@STEP`), so pruning never takes it away."""
    if not isinstance(spec, RunRef) or spec.step is None:
        return
    run_dir = resolve_run(spec.name)
    if spec.step in read_marked(run_dir):
        return
    try:
        mark_checkpoint(run_dir, spec.step)
    except OSError:
        pass  # a run folder this process cannot write to is one that no pruning here can touch either


# -- metrics, samples, config -----------------------------------------------------------------------------------
def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's settings for display: {} when config.json is missing or damaged."""
    try:
        return load_config(run_dir)
    except FacegenError:
        return {}


def load_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's settings to train on: a missing or damaged config.json is refused, naming it."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        settings = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        problem = error.strerror if isinstance(error, OSError) else f"not valid JSON: {error}"
        raise FacegenError(
            f"{path} cannot be read ({problem}). Restore it from a backup, or start a new run with --out."
        ) from None
    if not isinstance(settings, dict):
        raise FacegenError(f"{path} holds no settings table. Restore it from a backup, or start a new run with --out.")
    return settings


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Logged steps in order. A line cut short by a killed process is skipped."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "step" in record:
            records.append(record)
    return records


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    with open(run_dir / METRICS_FILE, "a") as handle:
        handle.write(json.dumps(record) + "\n")


def truncate_metrics(run_dir: Path, last_step: int) -> None:
    """Drop records after `last_step`: a resumed run logs those steps again."""
    kept = [record for record in read_metrics(run_dir) if record["step"] <= last_step]
    write_atomically(run_dir / METRICS_FILE, "".join(json.dumps(record) + "\n" for record in kept).encode())


@dataclass(frozen=True)
class SampleGrid:
    step: int
    path: Path


def list_sample_grids(run_dir: str | Path) -> list[SampleGrid]:
    folder = Path(run_dir) / SAMPLES_DIR
    if not folder.is_dir():
        return []
    grids = [SampleGrid(step, entry) for entry in folder.iterdir() if (step := parse_step(entry.name)) is not None]
    return sorted(grids, key=lambda grid: grid.step)


def sample_grid_path(run_dir: Path, step: int) -> Path:
    return run_dir / SAMPLES_DIR / f"{step_name(step)}.png"


# -- status -----------------------------------------------------------------------------------------------------
def write_status(run_dir: Path, state: str, step: int, total_steps: int, started: float, message: str = "") -> None:
    status = {
        "state": state,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": started,
        "updated": time.time(),
        "step": step,
        "total_steps": total_steps,
        "message": message,
    }
    write_atomically(run_dir / STATUS_FILE, json.dumps(status, indent=2).encode())


def read_status(run_dir: str | Path) -> dict[str, Any]:
    try:
        status = json.loads((Path(run_dir) / STATUS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return status if isinstance(status, dict) else {}


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_state(status: dict[str, Any], now: float | None = None) -> str:
    """The status file's state, except that a 'running' run whose process is gone counts as crashed."""
    state = status.get("state", "crashed")
    if state != "running":
        return state if state in RUN_STATES else "crashed"
    now = time.time() if now is None else now
    if now - float(status.get("updated", 0)) > HEARTBEAT_STALE_SECONDS:
        return "crashed"
    if status.get("host") == socket.gethostname() and not _process_alive(int(status.get("pid", -1))):
        return "crashed"
    return "running"


@dataclass(frozen=True)
class RunSummary:
    name: str
    path: Path
    arch: str
    dataset: str
    step: int  # last step reached
    total_steps: int
    images_seen: int
    updated: float | None  # seconds since the epoch
    status: str  # running, finished, stopped or crashed
    latest_checkpoint: int | None  # step of the newest checkpoint: `run:NAME` samples it; None before the first

    @property
    def model_spec(self) -> str:
        return str(RunRef(self.name))


def summarize_run(run_dir: Path) -> RunSummary:
    config = read_config(run_dir)
    status = read_status(run_dir)
    metrics = read_metrics(run_dir)
    last = metrics[-1] if metrics else {}
    checkpoints = list_checkpoints(run_dir)
    step = max(int(status.get("step", 0)), int(last.get("step", 0)), checkpoints[-1].step if checkpoints else 0)
    return RunSummary(
        name=run_dir.name,
        path=run_dir,
        arch=config.get("arch", "?"),
        dataset=config.get("data", "?"),
        step=step,
        total_steps=int(config.get("steps", status.get("total_steps", 0))),
        images_seen=int(last.get("images_seen", 0)),
        updated=status.get("updated"),
        status=effective_state(status) if status else ("finished" if checkpoints else "crashed"),
        latest_checkpoint=checkpoints[-1].step if checkpoints else None,
    )


def list_runs(runs_root: str | Path | None = None) -> list[RunSummary]:
    """Every run directory under `runs_root`, most recently updated first."""
    root = Path(runs_root) if runs_root is not None else default_runs_root()
    if not root.is_dir():
        return []
    summaries = [summarize_run(entry) for entry in root.iterdir() if entry.is_dir() and is_run_dir(entry)]
    return sorted(summaries, key=lambda summary: summary.updated or 0, reverse=True)
