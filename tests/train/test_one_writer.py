"""One writer per run directory: a second `train` or `--resume` on a run that is training is refused, touching nothing."""

import os
import signal
import subprocess
import time
from pathlib import Path

from facegen.train import runs
from tests.train.conftest import TINY_DCGAN, train_cli, train_command, train_env


def snapshot(run_dir: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under the run, hidden ones included, with size and modification time."""
    found = {}
    for directory, folders, files in os.walk(run_dir):
        for name in folders + files:
            path = Path(directory) / name
            status = path.stat()
            found[str(path.relative_to(run_dir))] = (status.st_size, status.st_mtime_ns)
    return found


def wait_for_checkpoint(process: subprocess.Popen, run_dir: Path) -> None:
    deadline = time.monotonic() + 240
    while not runs.list_checkpoints(run_dir):
        assert process.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.05)


def test_a_second_writer_on_a_training_run_is_refused_with_the_holders_pid(face_folder, tmp_path, cache_dir):
    run_dir = tmp_path / "busy"
    arguments = (
        "--arch", "dcgan", "--data", str(face_folder), "--batch", "8", "--checkpoint-every", "5",
        "--log-every", "1", "--sample-every", "1000", "--cache-dir", cache_dir, *TINY_DCGAN,
    )  # fmt: skip
    trainer = subprocess.Popen(
        train_command(*arguments, "--steps", "100000", "--out", str(run_dir)), env=train_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_checkpoint(trainer, run_dir)
        trainer.send_signal(signal.SIGSTOP)  # holds still while the others try, so any change would be theirs
        before = snapshot(run_dir)
        attempts = [
            train_cli("--resume", str(run_dir), timeout=60),
            train_cli("--resume", str(run_dir), "--steps", "200000", timeout=60),
            train_cli(*arguments, "--steps", "10", "--out", str(run_dir), timeout=60),
        ]
        after = snapshot(run_dir)
        trainer.send_signal(signal.SIGCONT)
    finally:
        trainer.send_signal(signal.SIGCONT)
        trainer.terminate()
        trainer.wait(timeout=120)
    for attempt in attempts:
        assert attempt.returncode == 2, attempt.stderr
        lines = attempt.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in attempt.stderr, attempt.stderr
        assert f"being trained by process {trainer.pid}" in lines[0]
    assert after == before
    assert runs.read_config(run_dir)["steps"] == 100000
    assert trainer.returncode == 0, trainer.stderr.read()
    assert runs.read_status(run_dir)["state"] == "stopped"


def test_temporary_names_of_one_file_differ_between_writers(tmp_path):
    from facegen.images import write_atomically

    seen = []
    original_replace = os.replace

    def recording_replace(source, destination):
        seen.append(Path(source).name)
        original_replace(source, destination)

    os.replace = recording_replace
    try:
        write_atomically(tmp_path / "status.json", b"{}")
        write_atomically(tmp_path / "status.json", b"{}")
    finally:
        os.replace = original_replace
    assert len(set(seen)) == 2 and all(name.startswith(".status.json.") for name in seen)
