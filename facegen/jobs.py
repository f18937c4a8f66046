"""Slots for background jobs (clip renders, FID/KID): a bounded number run at once, the others wait in line.

At most `per_session` jobs of one session and `server_wide` jobs in all run at a time; a waiting job knows its
place in the line, so a page can show it, and a cancelled one leaves the line at once.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from facegen.errors import FacegenError

WAIT_POLL_SECONDS = 0.2


class JobCancelled(FacegenError):
    pass


@dataclass(eq=False)
class Ticket:
    session_id: str
    number: int
    running: bool = field(default=False)


class JobSlots:
    def __init__(self, per_session: int, server_wide: int) -> None:
        self.per_session = per_session
        self.server_wide = server_wide
        self._numbers = itertools.count()
        self._line: list[Ticket] = []  # waiting and running tickets, in order of arrival
        self._changed = threading.Condition()

    def enter(self, session_id: str) -> Ticket:
        with self._changed:
            ticket = Ticket(session_id, next(self._numbers))
            self._line.append(ticket)
            self._admit()
            return ticket

    def leave(self, ticket: Ticket) -> None:
        with self._changed:
            if ticket in self._line:
                self._line.remove(ticket)
            ticket.running = False
            self._admit()

    def position(self, ticket: Ticket) -> int:
        """0 while the job runs; else its place among the waiting jobs (1: next)."""
        with self._changed:
            if ticket.running:
                return 0
            waiting = [queued for queued in self._line if not queued.running]
            return waiting.index(ticket) + 1 if ticket in waiting else 0

    def running_count(self) -> int:
        with self._changed:
            return sum(ticket.running for ticket in self._line)

    def wait_turn(
        self, ticket: Ticket, cancel: threading.Event | None = None, on_wait: Callable[[int], None] | None = None
    ) -> bool:
        """Block until `ticket` runs (True) or `cancel` is set (False: the ticket has left the line)."""
        while True:
            with self._changed:
                if ticket.running:
                    return True
                if cancel is not None and cancel.is_set():
                    self._line.remove(ticket)
                    self._admit()
                    return False
            if on_wait is not None:
                on_wait(self.position(ticket))
            with self._changed:
                if not ticket.running:
                    self._changed.wait(WAIT_POLL_SECONDS)

    @contextmanager
    def turn(
        self, session_id: str, cancel: threading.Event | None = None, on_wait: Callable[[int], None] | None = None
    ) -> Iterator[Ticket]:
        """Hold a slot for the body; waits for one first, raising JobCancelled when cancelled while waiting."""
        ticket = self.enter(session_id)
        try:
            if not self.wait_turn(ticket, cancel, on_wait):
                raise JobCancelled("The job was stopped before it started.")
            yield ticket
        finally:
            self.leave(ticket)

    def _admit(self) -> None:
        """Start waiting tickets in order of arrival while the limits allow (caller holds the lock)."""
        running = [ticket for ticket in self._line if ticket.running]
        for ticket in self._line:
            if len(running) >= self.server_wide:
                break
            if ticket.running:
                continue
            if sum(other.session_id == ticket.session_id for other in running) < self.per_session:
                ticket.running = True
                running.append(ticket)
        self._changed.notify_all()
