"""What the app holds per browser session: one temporary folder, background jobs, and their removal when it closes.

Streamlit reruns a page's script on every interaction, so a per-session folder is made once (the first time a
page asks) and remembered here, not in the script. A reaper thread asks Streamlit which sessions it still serves;
a session closed for longer than a short grace (a dropped connection reconnects within it) has its jobs cancelled
and, once they have stopped, its folder deleted.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from facegen.jobs import JobSlots
from facegen.public import policy

REAP_EVERY_SECONDS = 2.0
CLOSED_GRACE_SECONDS = 5.0
JOB_STOP_WAIT_SECONDS = 0.5


class BackgroundJob(Protocol):
    finished: bool

    def cancel(self) -> None: ...


@dataclass
class _Session:
    folder: Path
    jobs: list[BackgroundJob] = field(default_factory=list)
    closed_since: float | None = None


_lock = threading.Lock()
_sessions: dict[str, _Session] = {}
_root: Path | None = None
_slots: JobSlots | None = None
_reaper: threading.Thread | None = None


def current_session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    return context.session_id if context is not None else "no-session"


def session_folder(name: str) -> Path:
    """`name`, a folder of this session's own (made on first use, deleted when the session closes)."""
    with _lock:
        session = _session(current_session_id())
    folder = session.folder / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def track_job(job: BackgroundJob) -> None:
    """Cancel `job` when this session closes."""
    with _lock:
        session = _session(current_session_id())
        session.jobs = [known for known in session.jobs if not known.finished] + [job]


def job_slots() -> JobSlots:
    """The server's one line for background jobs, sized by the public-mode policy."""
    global _slots
    with _lock:
        if _slots is None:
            rules = policy()
            _slots = JobSlots(rules.jobs_per_session, rules.jobs_per_server)
        return _slots


def save_upload(name: str, data: bytes, subfolder: str) -> Path:
    """An uploaded file written into this session's folder under a name that cannot leave it."""
    safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name).lstrip(".") or "upload"
    path = session_folder(subfolder) / safe_name
    path.write_bytes(data)
    return path


def reap_closed_sessions(is_active, now: float | None = None) -> list[str]:
    """Cancel the jobs of sessions closed for longer than the grace and delete their folders; returns those removed."""
    now = time.monotonic() if now is None else now
    removed = []
    with _lock:
        entries = list(_sessions.items())
    for session_id, session in entries:
        if is_active(session_id):
            session.closed_since = None
            continue
        if session.closed_since is None:
            session.closed_since = now
        if now - session.closed_since < CLOSED_GRACE_SECONDS:
            continue
        for job in session.jobs:
            job.cancel()
        if not all(_stopped(job) for job in session.jobs):
            continue  # a render stops at its next batch: the next round removes the folder
        shutil.rmtree(session.folder, ignore_errors=True)
        with _lock:
            _sessions.pop(session_id, None)
        removed.append(session_id)
    return removed


def _stopped(job: BackgroundJob) -> bool:
    wait = getattr(job, "wait", None)
    return wait(JOB_STOP_WAIT_SECONDS) if wait is not None else job.finished


def _session(session_id: str) -> _Session:
    """The session's record, made on first use (caller holds the lock)."""
    global _root
    if _root is None:
        _root = Path(tempfile.mkdtemp(prefix="facegen-app-"))
        atexit.register(shutil.rmtree, _root, True)
    session = _sessions.get(session_id)
    if session is None:
        folder = _root / re.sub(r"[^A-Za-z0-9-]", "_", session_id)
        folder.mkdir(parents=True, exist_ok=True)
        session = _sessions[session_id] = _Session(folder)
        _start_reaper()
    return session


def _start_reaper() -> None:
    global _reaper
    if _reaper is not None:
        return
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return  # a script run outside a server (AppTest): no sessions come and go
    runtime = Runtime.instance()

    def reap_forever() -> None:
        while True:
            time.sleep(REAP_EVERY_SECONDS)
            reap_closed_sessions(runtime.is_active_session)

    _reaper = threading.Thread(target=reap_forever, daemon=True, name="facegen-session-reaper")
    _reaper.start()
