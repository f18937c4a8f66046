"""What the Training page shows and does with run directories: metric curves, timelapses, starting and stopping runs.

Reading the run directory itself (configs, metrics, grids, checkpoints, status) is `facegen.train.runs`; this module
turns it into chart data and videos, and launches `python -m facegen train` as its own process so that a run outlives
the browser tab and the session that started it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont
from scipy.signal import lfilter

from facegen.errors import FacegenError
from facegen.images import resize_image
from facegen.train import runs
from facegen.train.config import resolve_config
from facegen.train.preflight import check_training_start
from facegen.video import FfmpegPipe, mp4_arguments

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
# x axes a metric curve can be drawn over: metrics.jsonl key -> axis title
X_AXES = {"step": "Steps", "images_seen": "Images seen"}
NOT_METRICS = {*X_AXES, "time"}
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Timelapse frames are at least this many pixels high, so 32 px runs are not a thumbnail in the browser.
MIN_TIMELAPSE_HEIGHT = 256

ProgressCallback = Callable[[int, int], None]


# -- metric curves ----------------------------------------------------------------------------------------------
def metric_names(records: list[dict[str, Any]]) -> list[str]:
    """Numeric metrics the records hold, losses first, then in the order the run logged them."""
    names: dict[str, None] = {}
    for record in records:
        for name, value in record.items():
            if name not in NOT_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool):
                names[name] = None
    return sorted(names, key=lambda name: not name.startswith("loss"))


def smooth(values: np.ndarray, smoothing: float) -> np.ndarray:
    """Exponential moving average with TensorBoard's bias correction, so early points are not pulled towards 0."""
    if not 0 <= smoothing < 1:
        raise FacegenError(f"Smoothing {smoothing} is outside [0, 1). Use 0 for raw values, 0.9 for strong smoothing.")
    values = np.asarray(values, dtype=float)
    # average_i = smoothing * average_(i-1) + (1 - smoothing) * value_i, from average_(-1) = 0, as a linear filter
    average = lfilter([1 - smoothing], [1, -smoothing], values)
    return average / (1 - smoothing ** np.arange(1, len(values) + 1))


def metrics_frame(
    records: list[dict[str, Any]], names: list[str], x: str = "step", smoothing: float = 0.0
) -> pd.DataFrame:
    """Long-form table for a chart: one row per (record, metric) with the raw and the smoothed value.

    Each metric is smoothed over the records that hold it, so a metric logged only at some steps is not mixed with
    gaps.
    """
    if x not in X_AXES:
        raise FacegenError(f"Unknown x axis {x!r}. Choose one of: {', '.join(X_AXES)}.")
    pieces = []
    for name in names:
        points = [
            (record[x], record[name])
            for record in records
            if isinstance(record.get(name), (int, float)) and x in record
        ]
        if not points:
            continue
        xs, values = np.array(points, dtype=float).T
        pieces.append(pd.DataFrame({x: xs, "metric": name, "value": values, "smoothed": smooth(values, smoothing)}))
    if not pieces:
        return pd.DataFrame({x: [], "metric": [], "value": [], "smoothed": []})
    return pd.concat(pieces, ignore_index=True)


# -- timelapse of the sample grids ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timelapse:
    path: Path
    steps: tuple[int, ...]  # the grid shown in each frame
    frame_size: tuple[int, int]  # width, height
    fps: float


def timelapse_frame_size(grid_sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The largest grid, scaled up by a whole factor to at least MIN_TIMELAPSE_HEIGHT, with even sides for H.264."""
    width, height = max(grid_sizes, key=lambda size: size[0] * size[1])
    factor = max(1, -(-MIN_TIMELAPSE_HEIGHT // height))
    width, height = width * factor, height * factor
    return width + width % 2, height + height % 2


def _step_label(frame: np.ndarray, step: int) -> np.ndarray:
    image = Image.fromarray(frame)
    font_size = max(10, frame.shape[0] // 24)
    font = ImageFont.load_default(size=font_size)
    draw = ImageDraw.Draw(image)
    text = f"step {step:,}"
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    margin = max(2, font_size // 4)
    draw.rectangle((0, 0, right - left + 2 * margin, bottom - top + 2 * margin), fill=(0, 0, 0))
    draw.text((margin - left, margin - top), text, fill=(255, 255, 255), font=font)
    return np.asarray(image)


def timelapse_frames(
    grids: list[runs.SampleGrid], frame_size: tuple[int, int], label_steps: bool
) -> Iterator[np.ndarray]:
    """Each grid at the frame size, read one at a time. Grids that grew (ProGAN) are resized up to the final one."""
    width, height = frame_size
    for grid in grids:
        with Image.open(grid.path) as image:
            pixels = np.asarray(image.convert("RGB"))
        # whole-factor enlargements keep the pixels sharp; others (a ProGAN grid from an earlier stage) are resampled
        exact = (
            width % pixels.shape[1] == 0
            and height % pixels.shape[0] == 0
            and width // pixels.shape[1] == height // pixels.shape[0]
        )
        frame = resize_image(pixels, (width, height), "nearest" if exact else "lanczos")
        yield np.ascontiguousarray(_step_label(frame, grid.step) if label_steps else frame)


def build_timelapse(
    run_dir: str | Path,
    out_path: str | Path,
    fps: float = 4.0,
    label_steps: bool = True,
    progress: ProgressCallback | None = None,
) -> Timelapse:
    """An MP4 of the run's sample grids in step order, one grid per frame, written atomically."""
    run_dir, out_path = Path(run_dir), Path(out_path)
    grids = runs.list_sample_grids(run_dir)
    if not grids:
        raise FacegenError(
            f"Run {run_dir.name} has no sample grids yet; the first is written after "
            f"{runs.read_config(run_dir).get('sample_every', '?')} steps. Wait for it, then build the timelapse."
        )
    if not 0.25 <= fps <= 60:
        raise FacegenError(f"Timelapse speed {fps} grids per second is outside 0.25-60. Use 4 for a brisk clip.")
    sizes = []
    for grid in grids:
        with Image.open(grid.path) as image:
            sizes.append(image.size)
    frame_size = timelapse_frame_size(sizes)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_path.with_name(f".{out_path.name}.partial")
    comment = json.dumps({"timelapse": run_dir.name, "steps": [grid.step for grid in grids], "fps": fps})
    encoder = FfmpegPipe(mp4_arguments(frame_size, fps, comment, temporary), out_path.name)
    try:
        for done, frame in enumerate(timelapse_frames(grids, frame_size, label_steps), 1):
            encoder.write(frame)
            if progress is not None:
                progress(done, len(grids))
        encoder.finish()
        os.replace(temporary, out_path)
    except BaseException:
        if encoder.process.poll() is None:
            encoder.abort()
        temporary.unlink(missing_ok=True)
        raise
    return Timelapse(out_path, tuple(grid.step for grid in grids), frame_size, fps)


# -- starting and stopping runs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LaunchedRun:
    run_dir: Path
    process: subprocess.Popen
    log_path: Path
    command: tuple[str, ...]

    @property
    def exited(self) -> bool:
        return self.process.returncode is not None


def training_log_path(run_dir: Path) -> Path:
    """Where a run started from the app logs its output.

    Beside the run directory, not in it: the training loop refuses to start in a folder that already holds files.
    """
    return run_dir.parent / f".{run_dir.name}.train.log"


def train_command(settings: dict[str, Any], run_dir: Path) -> list[str]:
    """`python -m facegen train` with the user's settings as options: what the page runs and shows."""
    command = [sys.executable, "-m", "facegen", "train"]
    for name, value in settings.items():
        if value is None or name == "out":
            continue
        option = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            command.append(option if value else "--no-" + option[2:])
        else:
            command += [option, str(value)]
    return [*command, "--out", str(run_dir), "--no-progress"]


def train_command_line(settings: dict[str, Any], run_dir: Path) -> str:
    """The same command as a user would type it in a terminal."""
    return shlex.join(["python", *train_command(settings, run_dir)[1:]])


def check_run_name(name: str, runs_root: Path) -> Path:
    if not RUN_NAME.fullmatch(name):
        raise FacegenError(
            f"Run name {name!r} cannot be a folder name: use letters, digits, '.', '_' or '-' (up to 64), e.g. faces-dcgan."
        )
    run_dir = runs_root / name
    if run_dir.exists():
        raise FacegenError(f"A run named {name!r} already exists in {runs_root}. Choose another name.")
    return run_dir


def start_training_run(settings: dict[str, Any], name: str, runs_root: str | Path | None = None) -> LaunchedRun:
    """Check the settings, then start `python -m facegen train` for them as a separate, detached process.

    The process gets its own session, so it keeps training when the page is reloaded or the app is stopped; it
    reports through the run directory (status, metrics, grids, checkpoints) and its log file.
    """
    runs_root = (Path(runs_root) if runs_root is not None else runs.default_runs_root()).resolve()
    run_dir = check_run_name(name, runs_root)
    # a bad setting, data path or device is reported here, before anything is written, not buried in the log
    check_training_start(resolve_config({**settings, "out": str(run_dir)}), run_dir)
    runs_root.mkdir(parents=True, exist_ok=True)
    command = train_command(settings, run_dir)
    log_path = training_log_path(run_dir)
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    # collect the exit status when it ends, so a finished run leaves no zombie whose pid still looks alive
    threading.Thread(target=process.wait, daemon=True, name=f"reap-train-{process.pid}").start()
    return LaunchedRun(run_dir, process, log_path, tuple(command))


def request_stop(run_dir: str | Path) -> Path:
    """Ask a running run to end: it finishes its current step, writes a final checkpoint and exits.

    Returns the stop file, which the run deletes when it has stopped.
    """
    run_dir = Path(run_dir)
    state = runs.effective_state(runs.read_status(run_dir))
    if state != "running":
        raise FacegenError(f"Run {run_dir.name} is not running (it is {state}); there is nothing to stop.")
    stop_file = run_dir / runs.STOP_FILE
    stop_file.touch()
    return stop_file


def stop_requested(run_dir: str | Path) -> bool:
    return (Path(run_dir) / runs.STOP_FILE).exists()


def log_tail(log_path: str | Path, lines: int = 40) -> str:
    """The end of a training log, or '' when there is none."""
    try:
        with open(log_path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 64 * 1024))
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# -- deleting and archiving runs --------------------------------------------------------------------------------
ARCHIVE_DIR = ".archive"  # under the runs folder; never a run name (those start with a letter or digit)


def _refuse_if_running(run_dir: Path, doing: str) -> None:
    status = runs.read_status(run_dir)
    if status and runs.effective_state(status) == "running":
        raise FacegenError(f"Run {run_dir.name} is still training: stop it first, then {doing} it.")


def delete_run(run_dir: str | Path) -> None:
    """Remove a run that is not running: its folder (checkpoints, grids, metrics) and the app's log of it."""
    run_dir = Path(run_dir)
    _refuse_if_running(run_dir, "delete")
    hidden = run_dir.with_name(f".{run_dir.name}.deleting-{os.getpid()}")
    os.replace(run_dir, hidden)  # gone from the runs table at once, even while a large run is being removed
    shutil.rmtree(hidden, ignore_errors=True)
    training_log_path(run_dir).unlink(missing_ok=True)


def archive_run(run_dir: str | Path) -> Path:
    """Move a run that is not running into the runs folder's .archive/ folder, out of the runs table; returns
    where it went. `runs/.archive/NAME` still samples as a path (`--model runs/.archive/NAME`)."""
    run_dir = Path(run_dir)
    _refuse_if_running(run_dir, "archive")
    archive = run_dir.parent / ARCHIVE_DIR
    destination = archive / run_dir.name
    if destination.exists():
        destination = archive / f"{run_dir.name}-{int(time.time())}"
    archive.mkdir(exist_ok=True)
    os.replace(run_dir, destination)
    log = training_log_path(run_dir)
    if log.exists():
        os.replace(log, training_log_path(destination))
    return destination
