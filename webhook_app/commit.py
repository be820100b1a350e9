"""Group commit: requests arriving together share one inbox transaction, hence one fsync.

Each request still returns only once its own row is on disk ("200 means on disk" holds); it just
does not pay a commit of its own when others are waiting too.

Under gevent, the request that leads a commit first lets every other ready request run up to its
own append, then commits them all at once in the event loop's thread. Measured here
(bench/ingest.py), that beat committing in a native thread by half: handing each commit to a
thread and back cost more than the fsync it kept off the loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")  # what one request records: its body, or the body with what else is kept
WriteMany = Callable[[list[Item]], list[int]]


def no_gathering() -> None:
    """Threads need no help to gather: they queue up while a commit holds the GIL-free fsync."""


def event_loop_gathering() -> Callable[[], None]:
    """Under gunicorn's gevent worker, let the other ready greenlets run first; else nothing."""
    from gevent import idle, monkey

    return idle if monkey.is_module_patched("socket") else no_gathering


class _Waiter(Generic[Item]):
    """One request's row: filled in (or failed) by whichever request commits it."""

    def __init__(self, item: Item):
        self.item = item
        self.row_id: int | None = None
        self.error: BaseException | None = None
        self.leads = False  # committing the next batch is this request's job
        self.done = threading.Event()


class GroupCommit(Generic[Item]):
    """Appends items through `write_many`, batching the ones that arrive while a commit runs."""

    def __init__(self, write_many: WriteMany[Item], gather: Callable[[], None] = no_gathering):
        self.write_many, self.gather = write_many, gather
        self._lock = threading.Lock()
        self._waiting: list[_Waiter[Item]] = []
        self._committing = False

    def append(self, item: Item) -> int:
        """Record `item`; returns its row id once it is on disk, or raises what the write raised."""
        waiter = _Waiter(item)
        with self._lock:
            self._waiting.append(waiter)
            waiter.leads = not self._committing
            self._committing = True
        if not waiter.leads:
            waiter.done.wait()  # woken when its batch is written, or when handed the lead
        if waiter.leads and waiter.row_id is None and waiter.error is None:
            self._commit_batch()
        if waiter.error is not None:
            raise waiter.error
        assert waiter.row_id is not None
        return waiter.row_id

    def _commit_batch(self) -> None:
        """Write everything waiting (this request's row among it), then pass the lead on."""
        batch: list[_Waiter[Item]] = []
        try:
            self.gather()
            with self._lock:
                batch, self._waiting = self._waiting, []
            for waiter, row_id in zip(batch, self.write_many([w.item for w in batch]), strict=True):
                waiter.row_id = row_id
        except BaseException as exc:  # every request of the batch answers 503; none is lost silently
            if not batch:  # interrupted before taking it: fail what waits rather than strand it
                with self._lock:
                    batch, self._waiting = self._waiting, []
            for waiter in batch:
                waiter.error = exc
        finally:
            self._hand_over(batch)

    def _hand_over(self, batch: list[_Waiter[Item]]) -> None:
        """Wake the batch, and the first request that arrived meanwhile to lead the next commit
        (whatever happened to this one: a lead never gets lost)."""
        with self._lock:
            # Whoever arrived during the commit waits for the next one: the first of them leads it.
            next_leader = self._waiting[0] if self._waiting else None
            self._committing = next_leader is not None
        if next_leader is not None:
            next_leader.leads = True
            next_leader.done.set()
        for waiter in batch:
            waiter.done.set()
