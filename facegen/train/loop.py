"""The training loop: data order, steps, logging, sample grids, checkpoints, stop requests and resume.

Reproducibility: everything random in step s is drawn from generators seeded by (seed, s, rank), and the images of
step s follow from (seed, epoch) permutations, so a run restarted from its step-k checkpoint computes steps k+1...
exactly as the uninterrupted run did. `deterministic` additionally forbids non-deterministic kernels; on the CPU
that makes a killed-and-resumed run end with bit-identical weights.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from facegen.errors import FacegenError
from facegen.images import make_grid, png_bytes, write_atomically
from facegen.sampling import SampleRequest, recipe_for, render
from facegen.spec import RunRef
from facegen.train import distributed, runs
from facegen.train.checkpoints import TrainingProgress, check_resumable, load_checkpoint, save_checkpoint
from facegen.train.config import ConfigError, TrainConfig, resolve_run_config
from facegen.train.gans import GANTrainer, build_trainer
from facegen.train.preflight import check_training_start

# How often the status file's heartbeat is refreshed even when no step is logged.
HEARTBEAT_SECONDS = 10.0


class BatchOrder:
    """Which dataset images form global batch number b (0-based), and which of them are mirrored.

    Each epoch is a fresh permutation drawn from (seed, epoch) alone, so any batch can be recomputed without
    replaying earlier ones. Epochs drop their last partial batch. Under DDP each rank takes every world_size-th
    image of the global batch, as DistributedSampler would.
    """

    def __init__(self, dataset_size: int, batch: int, seed: int, mirror: bool, rank: int = 0, world_size: int = 1) -> None:
        self.dataset_size = dataset_size
        self.batch = batch
        self.seed = seed
        self.mirror = mirror
        self.rank = rank
        self.world_size = world_size
        self.batches_per_epoch = dataset_size // batch
        self._epoch: int | None = None
        self._permutation = np.empty(0, np.int64)
        self._flips = np.empty(0, bool)

    def _load_epoch(self, epoch: int) -> None:
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._permutation = rng.permutation(self.dataset_size)
            self._flips = rng.random(self.dataset_size) < 0.5 if self.mirror else np.zeros(self.dataset_size, bool)
            self._epoch = epoch

    def batch_indices(self, batch_number: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, slot = divmod(batch_number, self.batches_per_epoch)
        self._load_epoch(epoch)
        members = slice(slot * self.batch + self.rank, (slot + 1) * self.batch, self.world_size)
        return torch.from_numpy(self._permutation[members]), torch.from_numpy(self._flips[members])


def step_noise(seed: int, step: int, rank: int, device: torch.device) -> torch.Generator:
    """The generator every random draw of one step comes from: a pure function of (seed, step, rank)."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0]
    return torch.Generator(device).manual_seed(int(state >> np.uint64(1)))


def seed_everything(seed: int, deterministic: bool, device: torch.device) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


class StopRequest:
    """Set by SIGTERM, SIGINT (Ctrl-C) or a `stop` file in the run directory; the loop then ends cleanly."""

    def __init__(self, run_dir: Path) -> None:
        self.stop_file = run_dir / runs.STOP_FILE
        self.signalled = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        # signal handlers can only be set from the main thread; a page training in a thread uses the stop file
        if threading.current_thread() is threading.main_thread():
            for signal_number in (signal.SIGTERM, signal.SIGINT):
                self._previous[signal_number] = signal.signal(signal_number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signal_number, handler in self._previous.items():
            signal.signal(signal_number, handler)

    def _handle(self, signal_number: int, frame: object) -> None:
        if self.signalled and signal_number == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user does not want to wait for the checkpoint
        self.signalled = True

    def requested(self) -> bool:
        return self.signalled or self.stop_file.exists()


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    state: str  # finished or stopped
    checkpoint: Path | None


def never_trained(run_dir: Path) -> bool:
    """A run that crashed before its first step (e.g. its data could not be read): nothing in it is worth keeping."""
    names = {entry.name for entry in run_dir.iterdir()}
    status = runs.read_status(run_dir)
    return names <= {runs.CONFIG_FILE, runs.STATUS_FILE, runs.LOCK_FILE} and status.get("state") == "crashed" and not status.get("step")


class RunLoop:
    """Drives one run (fresh or resumed); only the writer process (rank 0) touches the run directory."""

    def __init__(self, config: TrainConfig, run_dir: Path, resume: bool, progress: bool) -> None:
        self.config = config
        self.run_dir = run_dir
        self.resume = resume
        self.show_progress = progress
        self.context = distributed.from_environment()
        self.device = distributed.choose_device(config.device, self.context)
        self.writer = self.context.is_writer
        self.started = time.time()
        self.last_heartbeat = 0.0
        self.owns_run_dir = False

    # -- set-up ---------------------------------------------------------------------------------------------
    def open_dataset(self):
        from facegen.data import open_dataset

        # rank 0 decodes into the cache first; the others then read the finished cache instead of racing it
        dataset = None
        if self.writer:
            dataset = open_dataset(self.config.data, self.config.resolution, self.config.cache_dir, progress=self.show_progress)
        distributed.barrier(self.context)
        if dataset is None:
            dataset = open_dataset(self.config.data, self.config.resolution, self.config.cache_dir, progress=False)
        global_batch = self.config.batch
        if global_batch > len(dataset):
            raise ConfigError(
                f"Batch {global_batch} is larger than the dataset ({dataset.report.summary()}). Use --batch "
                f"{max(1, len(dataset) // 2)} or less, or add images."
            )
        if global_batch % self.context.world_size:
            raise ConfigError(
                f"Batch {global_batch} does not split evenly over {self.context.world_size} processes. Use a batch "
                f"that is a multiple of {self.context.world_size}."
            )
        return dataset

    def check_run_dir_is_new(self) -> None:
        """A fresh run needs an empty folder, or the remains of a run that failed before its first step."""
        if self.resume or not self.run_dir.exists() or {entry.name for entry in self.run_dir.iterdir()} <= {runs.LOCK_FILE}:
            return
        if never_trained(self.run_dir):
            for leftover in (runs.CONFIG_FILE, runs.STATUS_FILE):
                (self.run_dir / leftover).unlink(missing_ok=True)
            return
        raise FacegenError(
            f"{self.run_dir} already holds files. Continue that run with `train --resume {self.run_dir}`, or "
            "choose a new --out folder."
        )

    def take_run_dir(self) -> None:
        """Create (or, resuming, clean up) the run directory; from here on its status reports this process."""
        if self.resume:
            runs.remove_unfinished_writes(self.run_dir)
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_atomically(self.run_dir / runs.CONFIG_FILE, self.config.to_json().encode())
        self.owns_run_dir = True

    def restore(self, trainer: GANTrainer) -> TrainingProgress:
        if not self.resume:
            return TrainingProgress(0, 0)
        checkpoints = runs.list_checkpoints(self.run_dir)
        if not checkpoints:
            raise FacegenError(
                f"{self.run_dir} has no checkpoint to resume from (the first is written after "
                f"{self.config.checkpoint_every} steps). Start it again with --out."
            )
        progress = load_checkpoint(trainer, checkpoints[-1].path)
        if self.writer:
            runs.truncate_metrics(self.run_dir, progress.step)
        return progress

    # -- the loop -------------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        was_deterministic = torch.are_deterministic_algorithms_enabled()
        seed_everything(self.config.seed, self.config.deterministic, self.device)
        distributed.start(self.context, self.device)
        try:
            if self.writer:
                self.check_run_dir_is_new()
                self.take_run_dir()
            distributed.barrier(self.context)
            dataset = self.open_dataset()
            trainer = build_trainer(self.config, self.device, self.context, tuple(dataset.attribute_names or ()))
            progress = self.restore(trainer)
            if self.writer:
                self.write_status("running", progress.step)
            return self.train(trainer, dataset, progress)
        except BaseException as error:
            if self.owns_run_dir:
                message = str(error) if isinstance(error, FacegenError) else f"{type(error).__name__}: {error}"
                self.write_status("crashed", self.read_step(), message)
            raise
        finally:
            distributed.stop(self.context)
            torch.use_deterministic_algorithms(was_deterministic)

    def train(self, trainer: GANTrainer, dataset, progress: TrainingProgress) -> TrainResult:
        config = self.config
        order = BatchOrder(len(dataset), config.batch, config.seed, config.mirror, self.context.rank, self.context.world_size)
        labels = trainer.sample_labels(dataset.attributes)
        step, images_seen = progress.step, progress.images_seen
        batches_per_step = trainer.batches_per_step
        images_per_step = config.batch * batches_per_step
        totals: dict[str, torch.Tensor] = {}
        interval_start, interval_first_step = time.perf_counter(), step
        checkpoint: Path | None = None
        state = "finished"
        bar = tqdm(
            total=config.steps, initial=step, unit="step", file=sys.stderr, dynamic_ncols=True,
            disable=not (self.writer and self.show_progress) or None, desc=self.run_dir.name,
        )  # fmt: skip
        with StopRequest(self.run_dir) as stop, bar:
            while step < config.steps:
                step += 1
                stage = trainer.prepare(step)
                batches = [
                    trainer.to_device(trainer.host_batch(dataset.batch(*order.batch_indices(batch_number))))
                    for batch_number in range((step - 1) * batches_per_step, step * batches_per_step)
                ]
                metrics = trainer.train_step(batches, step_noise(config.seed, step, self.context.rank, self.device))
                trainer.update_ema(step)
                images_seen += images_per_step
                for name, value in metrics.items():
                    totals[name] = totals.get(name, 0) + value
                bar.update(1)
                last = step == config.steps
                stopping = distributed.any_rank(stop.requested(), self.context, self.device) if self._stop_check_due(step) else False
                checkpoint_due = step % config.checkpoint_every == 0 or last or stopping
                if step % config.log_every == 0 or checkpoint_due:
                    steps_logged = step - interval_first_step
                    if self.device.type == "cuda":
                        torch.cuda.synchronize(self.device)  # queued GPU work belongs to this interval
                    images_per_second = steps_logged * images_per_step / max(time.perf_counter() - interval_start, 1e-9)
                    record = {name: float(total) / steps_logged for name, total in totals.items()}
                    if checkpoint_due and self.context.enabled:
                        record["replica_max_difference"] = distributed.replica_difference(
                            list(trainer.networks().values()), self.context, self.device
                        )
                    record = self.log(step, images_seen, record, stage, trainer, images_per_second)
                    bar.set_postfix({key: f"{record[key]:.3g}" for key in ("loss_d", "loss_g") if key in record})
                    totals, interval_start, interval_first_step = {}, time.perf_counter(), step
                if self.writer and (step % config.sample_every == 0 or last or stopping):
                    self.save_sample_grid(trainer, step, labels)
                if checkpoint_due:
                    checkpoint = self.save_checkpoint(trainer, TrainingProgress(step, images_seen))
                if self.writer and time.time() - self.last_heartbeat > HEARTBEAT_SECONDS:
                    self.write_status("running", step)
                if stopping:
                    state = "stopped"
                    break
        if self.writer:
            stop.stop_file.unlink(missing_ok=True)
            self.write_status(state, step)
        return TrainResult(self.run_dir, step, state, checkpoint)

    def _stop_check_due(self, step: int) -> bool:
        # one process checks every step; several agree over the network only every log interval
        return not self.context.enabled or step % self.config.log_every == 0

    # -- outputs --------------------------------------------------------------------------------------------
    def log(
        self,
        step: int,
        images_seen: int,
        averages: dict[str, float],
        stage: dict[str, float],
        trainer: GANTrainer,
        images_per_second: float,
    ) -> dict[str, Any]:
        """One metrics.jsonl record: losses averaged since the last record, D(x), D(G(z)), lr, speed."""
        record: dict[str, Any] = {"step": step, "images_seen": images_seen, **averages, **stage}
        record["lr"] = trainer.optimizers["generator"].param_groups[0]["lr"]
        record["images_per_second"] = round(images_per_second, 2)
        record["time"] = time.time()
        if self.writer:
            runs.append_metrics(self.run_dir, record)
            self.write_status("running", step)
        return record

    def save_sample_grid(self, trainer: GANTrainer, step: int, labels: np.ndarray | None) -> Path:
        """The fixed seeds, rendered as `facegen sample --model run:NAME@STEP --seeds 0-N` renders them."""
        seeds = list(range(self.config.sample_count))
        request = SampleRequest(str(RunRef(self.run_dir.name, step)), seeds, labels=labels)
        generator = trainer.sampling_generator(request.model_spec)
        path = runs.sample_grid_path(self.run_dir, step)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, png_bytes(make_grid(render(generator, request)), dict(recipe_for(generator, request), step=step)))
        return path

    def save_checkpoint(self, trainer: GANTrainer, progress: TrainingProgress) -> Path:
        folder = self.run_dir / runs.CHECKPOINTS_DIR / runs.step_name(progress.step)
        if self.writer:
            info = {
                "description": f"facegen {self.config.arch} run {self.run_dir.name}, step {progress.step}, "
                f"{progress.images_seen:,} images seen, data {self.config.data}",
                "extra": {"run": str(self.run_dir), "step": progress.step, "images_seen": progress.images_seen},
            }
            folder = runs.write_checkpoint_dir(
                self.run_dir, progress.step, lambda staging: save_checkpoint(trainer, staging, progress, info)
            )
            runs.prune_checkpoints(self.run_dir, self.config.keep_checkpoints)
        distributed.barrier(self.context)
        return folder

    def write_status(self, state: str, step: int, message: str = "") -> None:
        runs.write_status(self.run_dir, state, step, self.config.steps, self.started, message)
        self.last_heartbeat = time.time()

    def read_step(self) -> int:
        return int(runs.read_status(self.run_dir).get("step", 0))


def start_run(config: TrainConfig, run_dir: str | Path, progress: bool = True) -> TrainResult:
    """Train a new run into `run_dir` (which must be new or empty)."""
    if distributed.from_environment().is_writer:  # the other ranks find the folder the writer has begun
        check_training_start(config, run_dir)
    with _only_writer(Path(run_dir)):
        return RunLoop(config, Path(run_dir), resume=False, progress=progress).run()


def _only_writer(run_dir: Path) -> AbstractContextManager[None]:
    """The run directory's lock, taken by the process that writes it (rank 0 of a distributed run)."""
    return runs.writer_lock(run_dir) if distributed.from_environment().is_writer else nullcontext()


def resume_run(run_dir: str | Path, steps: int | None = None, progress: bool = True) -> TrainResult:
    """Continue a run from its newest checkpoint, to its configured steps or to `steps` when given."""
    run_dir = Path(run_dir)
    if not runs.is_run_dir(run_dir):
        raise FacegenError(f"{run_dir} is not a run directory (no {runs.CONFIG_FILE}). Give the folder a run wrote.")
    with _only_writer(run_dir):
        return _resume_locked(run_dir, steps, progress)


def _resume_locked(run_dir: Path, steps: int | None, progress: bool) -> TrainResult:
    checkpoints = runs.list_checkpoints(run_dir)
    if checkpoints:
        check_resumable(checkpoints[-1].path)  # before anything in the run directory changes
        if steps is not None and steps <= checkpoints[-1].step:
            raise FacegenError(
                f"--steps {steps} is not beyond the run's newest checkpoint (step {checkpoints[-1].step}). Give more "
                "steps to train longer, or sample the run as it is."
            )
    stored = runs.load_config(run_dir)
    if steps is not None:
        stored["steps"] = steps
    try:
        config = resolve_run_config(stored)
    except ConfigError as error:
        raise ConfigError(f"{run_dir / runs.CONFIG_FILE}: {error}") from None
    if steps is not None:
        write_atomically(run_dir / runs.CONFIG_FILE, config.to_json().encode())
    return RunLoop(config, run_dir, resume=True, progress=progress).run()
