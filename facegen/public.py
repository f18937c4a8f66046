"""Public mode (`FACEGEN_PUBLIC=1`): what a browser user of a shared server may reach, in one place pages ask.

On a public server a user must not name anything on the server's disk: models come from the catalog or from an
upload, datasets and reference sets from the demo sets or an upload; training from the browser is off (a run is a
detached process of any size); errors show their message, never a traceback with server paths. Background jobs
(clip renders, FID/KID) take a slot: at most `jobs_per_session` running per session and `jobs_per_server` in
all, the others queued. Without public mode the app is a local studio: every path is the user's own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PUBLIC_VARIABLE = "FACEGEN_PUBLIC"
JOBS_PER_SESSION_VARIABLE = "FACEGEN_JOBS_PER_SESSION"
JOBS_PER_SERVER_VARIABLE = "FACEGEN_JOBS_PER_SERVER"
DEMO_DATASETS = ("demo:lfw", "demo:digiface?n=1000")
# A render or FID pass keeps the CPU's cores busy on its own: on a public server two at once share a small
# machine's cores fairly, and one per session keeps a single visitor from taking both.
PUBLIC_JOBS_PER_SESSION = 1
PUBLIC_JOBS_PER_SERVER = 2
# Locally a session may preview and render at once; the server-wide cap only keeps many tabs from thrashing.
LOCAL_JOBS_PER_SESSION = 2
LOCAL_JOBS_PER_SERVER = 8


@dataclass(frozen=True)
class Policy:
    public: bool
    jobs_per_session: int
    jobs_per_server: int

    @property
    def server_paths_allowed(self) -> bool:
        """Whether text boxes may name files and folders on the server (weights files, datasets, references)."""
        return not self.public

    @property
    def training_allowed(self) -> bool:
        return not self.public

    @property
    def show_error_details(self) -> bool:
        return not self.public


def policy() -> Policy:
    """The policy the environment sets; read on every call, so a test or a restarted server can change it."""
    public = os.environ.get(PUBLIC_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")
    return Policy(
        public=public,
        jobs_per_session=_positive(
            JOBS_PER_SESSION_VARIABLE, PUBLIC_JOBS_PER_SESSION if public else LOCAL_JOBS_PER_SESSION
        ),
        jobs_per_server=_positive(
            JOBS_PER_SERVER_VARIABLE, PUBLIC_JOBS_PER_SERVER if public else LOCAL_JOBS_PER_SERVER
        ),
    )


def _positive(variable: str, default: int) -> int:
    text = os.environ.get(variable, "").strip()
    return max(1, int(text)) if text.isdigit() else default
