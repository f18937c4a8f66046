"""Background job slots: per-session and server-wide limits, places in line, cancellation while waiting; and the
app's per-session folders, removed with their jobs when the session closes."""

from __future__ import annotations

import threading

from facegen.jobs import JobSlots
from facegen.ui import sessions


def test_jobs_beyond_the_limits_wait_in_line_and_start_in_order():
    slots = JobSlots(per_session=1, server_wide=2)
    first, second_of_a = slots.enter("a"), slots.enter("a")
    from_b, from_c = slots.enter("b"), slots.enter("c")
    # a's second job waits for a's first; b takes the other slot; c waits behind the full server
    assert [slots.position(ticket) for ticket in (first, second_of_a, from_b, from_c)] == [0, 1, 0, 2]
    slots.leave(first)
    assert [slots.position(ticket) for ticket in (second_of_a, from_b, from_c)] == [0, 0, 1]
    slots.leave(from_b)
    assert slots.position(from_c) == 0 and slots.running_count() == 2


def test_a_waiting_job_that_is_cancelled_leaves_the_line():
    slots = JobSlots(per_session=1, server_wide=1)
    running, waiting = slots.enter("a"), slots.enter("b")
    cancel = threading.Event()
    places: list[int] = []
    cancel.set()
    assert slots.wait_turn(waiting, cancel, places.append) is False
    slots.leave(running)
    assert slots.running_count() == 0


def test_wait_turn_returns_when_a_slot_frees():
    slots = JobSlots(per_session=1, server_wide=1)
    running, waiting = slots.enter("a"), slots.enter("b")
    places: list[int] = []
    threading.Timer(0.3, slots.leave, [running]).start()
    assert slots.wait_turn(waiting, threading.Event(), places.append) is True
    assert places and places[0] == 1


class FakeJob:
    def __init__(self) -> None:
        self.finished = False

    def cancel(self) -> None:
        self.finished = True


def test_a_closed_session_has_its_jobs_cancelled_and_its_folder_removed(monkeypatch):
    monkeypatch.setattr(sessions, "current_session_id", lambda: "closing-session")
    folder = sessions.session_folder("clips")
    (folder / "walk.mp4").write_bytes(b"frames")
    job = FakeJob()
    sessions.track_job(job)
    assert sessions.session_folder("clips") == folder, "made once per session"
    assert sessions.reap_closed_sessions(lambda session_id: True) == []
    assert sessions.reap_closed_sessions(lambda session_id: session_id != "closing-session", now=0.0) == []
    removed = sessions.reap_closed_sessions(
        lambda session_id: session_id != "closing-session", now=sessions.CLOSED_GRACE_SECONDS + 1
    )
    assert removed == ["closing-session"] and job.finished and not folder.parent.exists()
