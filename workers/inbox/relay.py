"""The relay: a thread in each web process that moves inbox rows to the Celery broker, in order."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from workers.inbox.broker import Publish
from workers.inbox.database import Inbox
from workers.inbox.schema import Delivery
from workers.inbox.watch import StoreWatch
from workers.priority import lower_thread_priority

log = logging.getLogger(__name__)
IDLE_POLL = 0.5          # seconds between looks at the inbox when nobody wakes us
GATHER = 0.002           # after a wake-up, let a few more deliveries arrive: fewer, larger batches
MAX_OUTAGE_WAIT = 10.0   # longest pause between attempts while the broker is down
PRUNE_EVERY = 3600.0
WATCH_EVERY = 2.0        # seconds between looks at whether Redis lost its data
ORPHANS_EVERY = 5.0      # seconds between looks for queues whose drain task was lost
RELAY_NICE = 15


class Every:
    """A chore's timer: `due()` is true once every `seconds`, first at the first look."""

    def __init__(self, seconds: float):
        self.seconds, self._last = seconds, float("-inf")

    def due(self, now: float) -> bool:
        if now - self._last < self.seconds:
            return False
        self._last = now
        return True


class Wakeup(Protocol):
    """A threading.Event, or a PipeWakeup when the web workers are other processes."""

    def set(self) -> None: ...
    def wait(self, timeout: float) -> bool: ...
    def clear(self) -> None: ...


class Relay:
    """Claims unpublished deliveries, publishes them, marks them; waits out broker outages."""

    def __init__(self, inbox: Inbox, publish: Publish, *,
                 retention: float = 7 * 86400.0, wakeup: Wakeup | None = None,
                 watch: StoreWatch | None = None, replay_window: float = 900.0,
                 connect: Callable[[], None] = lambda: None, confirm_within: float = 150.0,
                 stuck_after: float | None = None, backlog: Callable[[], int] | None = None,
                 restart_orphans: Callable[[], int] | None = None):
        self.inbox, self.publish, self.connect = inbox, publish, connect
        self.confirm_within = confirm_within  # longer than a worker may take (visibility timeout)
        # A worker that popped a message and then stopped (SIGSTOP, a frozen VM) holds it outside
        # the broker's unacked set, where no visibility timeout reaches. When the broker's queue
        # is empty, a delivery unconfirmed after `stuck_after` can only be in such hands.
        self.stuck_after, self.backlog = stuck_after, backlog
        # The same holds for drain tasks; the workers' sweep restarts their queues once a minute,
        # the relay (which no frozen worker holds up) every ORPHANS_EVERY.
        self.restart_orphans, self._orphans_timer = restart_orphans, Every(ORPHANS_EVERY)
        self.watch, self.replay_window = watch, replay_window
        self._watch_timer = Every(WATCH_EVERY)
        self.retention = retention
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._wake: Wakeup = wakeup or threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._prune_timer = Every(PRUNE_EVERY)

    def prepare(self) -> None:
        """Reach the store and the broker once from the calling thread, before the relay thread.

        The first connection imports modules (transports, codecs). gunicorn's master forks web
        workers while the relay thread runs: a fork in the middle of an import leaves the child a
        module lock nobody will release. Importing here, before any thread, closes that window.
        """
        try:
            self.connect()
        except Exception as exc:  # down now: the thread waits it out as it always does
            log.warning("relay: store or broker not reachable yet (%s)", type(exc).__name__)

    def ensure_running(self) -> None:
        """Start the thread in this process (again after a fork: threads do not survive one)."""
        if self._pid != os.getpid() or not (self._thread and self._thread.is_alive()):
            self._pid, self.owner = os.getpid(), f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            self._thread = threading.Thread(target=self._run, name="inbox-relay", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """A delivery was just recorded: publish it now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current batch."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        # Behind the web workers of the same process group: under load, a request waiting for CPU
        # costs an ack, a relay batch that waits only grows (and gets cheaper per delivery).
        lower_thread_priority(RELAY_NICE)
        pause = 0.1
        while not self._stop.is_set():
            try:
                self._watch_now_and_then()
                self._restart_orphans_now_and_then()
                moved = self.pump()
                self._prune_now_and_then()
                pause = 0.1
            except Exception as exc:  # the broker is down or slow, or the disk full: keep the rows
                what = "inbox not writable" if isinstance(exc, sqlite3.Error) else "broker unavailable"
                log.warning("relay: %s (%s); retrying in %.1fs", what, type(exc).__name__, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, MAX_OUTAGE_WAIT)
                continue
            if not moved and self._wake.wait(IDLE_POLL):
                self._wake.clear()
                self._stop.wait(GATHER)

    def pump(self) -> int:
        """Publish one batch of deliveries; returns how many left the inbox.

        A row that cannot become a message (its bytes are not text) is marked failed and skipped;
        it never holds back the rows after it. A broker error fails the batch: it is an outage, and
        the batch is published again later (a message the broker already took is then published
        twice; the workers' dedup absorbs it).
        """
        claimed = self.inbox.claim(self.owner)
        ready: list[tuple[Delivery, str]] = []
        failed: list[tuple[int, str]] = []
        for delivery in claimed:
            try:
                ready.append((delivery, delivery.body.decode("utf-8")))
            except UnicodeDecodeError as exc:
                failed.append((delivery.id, f"relay: body is not UTF-8 ({exc.reason})"))
                log.error("relay: delivery=%s is not UTF-8; marked failed", delivery.id)
        if failed:
            self.inbox.mark_failed(failed)
        try:
            if ready:
                self.publish(ready)
        except BaseException:
            self.inbox.release(self.owner)  # try them again without waiting out the lease
            raise
        if ready:
            self.inbox.mark_published([delivery.id for delivery, _ in ready])
        return len(claimed)

    def _watch_now_and_then(self) -> None:
        now = time.time()
        if self.watch is None or not self._watch_timer.due(now):
            return
        try:
            self.watch.remember()
            lost = self.watch.data_lost()
            failures = self.watch.collect_failures()
            unconfirmed = self.to_publish_again(now)
        except Exception as exc:  # the store is down: publishing may still work, so go on
            log.warning("relay: cannot reach the store (%s)", type(exc).__name__)
            return
        if unconfirmed:
            self.inbox.republish(unconfirmed)
            log.warning("relay: %d delivery(ies) published but never taken in by a worker; publishing "
                        "again", len(unconfirmed))
        if failures:
            log.error("relay: %d delivery(ies) failed in a worker; see `deliveries list --failed`",
                      failures)
        if lost:
            count = self.inbox.republish_since(now - self.replay_window)
            log.warning("relay: Redis lost its data; publishing the last %d deliveries again", count)

    def _restart_orphans_now_and_then(self) -> None:
        if self.restart_orphans is None or not self._orphans_timer.due(time.time()):
            return
        try:
            restarted = self.restart_orphans()
        except Exception as exc:  # the store is down: nothing to restart on it now
            log.warning("relay: cannot look for lost drain tasks (%s)", type(exc).__name__)
            return
        if restarted:
            log.warning("relay: %d queue(s) had lost their drain task (a worker killed or frozen "
                        "with it); started again", restarted)

    def to_publish_again(self, now: float) -> list[int]:
        """Published deliveries to publish again: unconfirmed after `confirm_within` (the broker
        lost them), or after `stuck_after` while the broker holds no ingest message."""
        assert self.watch is not None
        if self.stuck_after is None or self.backlog is None:
            return self.watch.unconfirmed(now=now, confirm_within=self.confirm_within)
        late = self.watch.unconfirmed(now=now, confirm_within=self.stuck_after)
        if not late or self.backlog() == 0:
            return late
        return self.watch.unconfirmed(now=now, confirm_within=self.confirm_within)

    def _prune_now_and_then(self) -> None:
        now = time.time()
        if self._prune_timer.due(now):
            self.inbox.prune(older_than=now - self.retention)
