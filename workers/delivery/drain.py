"""Handing queued events to one handler, in timestamp order; retry, then dead-letter."""

from __future__ import annotations

import itertools
import logging
import random
import time

from workers.delivery import gate
from workers.delivery.plugins import LoadedHandler
from workers.errors import HandlerRejected
from workers.events.log import Attempt, EventLog, error_text
from workers.metrics import HANDLER_DELIVERIES
from workers.records import DeadLetter, DeliveryQueue, Event
from workers.scheduler import backoff
from workers.state import Store
from workers.state.waits import is_wait

log = logging.getLogger(__name__)
BATCH = 100
TIME_BUDGET = 10.0   # seconds one task spends on a queue before handing over (time limits)
MAX_WAIT = 30.0      # the longest wait for a slot of a busy handler
MARK_PATIENCE = 5.0  # seconds a refused done mark is tried again, unless the task's limits allow more
LIMIT_MARGIN = 1.5   # seconds kept between a mark's last try and the task's soft time limit


def run_queue(store: Store, loaded: LoadedHandler, queue: DeliveryQueue, *, lease: float,
              waits: int = 0, journal: EventLog | None = None) -> tuple[float | None, int]:
    """Drain the queue if its handler may be called now: (retry delay or None when done, the
    waits in a row so far, which lengthen the next wait for a slot)."""
    admitted = gate.admit(store, loaded, lease=lease)
    if isinstance(admitted, gate.Wait):
        # A pause says how long it lasts; only waits for a slot grow with their number.
        grown = 0 if admitted.reason == "paused" else waits + 1
        return wait_out(store, loaded, queue, admitted, waits, journal=journal), grown
    try:
        # Within the task's time limits (the lease is 3/4 of the visibility timeout, the soft
        # limit half of it), whatever the visibility timeout: a task stopped at its limit loses
        # more. A refused done mark may use what is left of the soft limit (see _mark_done).
        budget, soft_limit = min(TIME_BUDGET, lease / 3), lease * 2 / 3
        marks_until = time.monotonic() + soft_limit - LIMIT_MARGIN
        return drain(store, loaded, queue, budget, admitted=admitted, journal=journal,
                     marks_until=marks_until), 0
    finally:
        gate.leave(store, loaded, admitted)


def wait_out(store: Store, loaded: LoadedHandler, queue: DeliveryQueue, wait: gate.Wait,
             waits: int, *, journal: EventLog | None = None) -> float | None:
    """The delay before a queue whose handler may not be called is tried again. A handler failing
    for longer than its `max_age` dead-letters what waits, without a call (None: none left), both
    while paused and while the probe after a pause holds its slot."""
    if wait.since is not None and time.time() - wait.since >= loaded.config.max_age:
        _give_up_on(store, loaded, queue, since=wait.since, journal=journal)
        return 0.0 if store.queues.length(queue.name) else None
    if wait.reason != "paused":
        return backoff(waits + 1, base=wait.seconds or gate.BUSY_WAIT, cap=MAX_WAIT)
    return wait.seconds * random.uniform(1.0, 1.1)  # queues of one handler do not all wake at once


def drain(store: Store, loaded: LoadedHandler, queue: DeliveryQueue, time_budget: float = TIME_BUDGET,
          *, admitted: gate.Pass | None = None, journal: EventLog | None = None,
          marks_until: float | None = None) -> float | None:
    """Deliver the queue's events oldest first; returns a retry delay if the head must wait
    (0 when the time budget ran out first)."""
    started = time.monotonic()
    marks_until = started + min(MARK_PATIENCE, time_budget / 2) if marks_until is None else marks_until
    records = store.queues.peek(queue.name, BATCH)
    done = store.progress.done_many([(loaded.name, record["id"]) for record in records])
    moved_on: list[str] = []
    try:
        for record, had in zip(records, done, strict=True):
            if time.monotonic() - started > time_budget:
                return 0.0  # go on in a fresh task
            if not had:
                delay = deliver_one(store, loaded, queue, record, admitted=admitted, journal=journal,
                                    marks_until=marks_until)
                if delay is not None:
                    return delay
            moved_on.append(record["id"])
    finally:
        # One round trip for the batch. Should it not happen, the events stay queued but marked
        # done: the next drain skips and removes them.
        store.queues.dequeue(queue.name, *moved_on)
    return None


def deliver_one(store: Store, loaded: LoadedHandler, queue: DeliveryQueue, record: dict, *,
                admitted: gate.Pass | None = None, journal: EventLog | None = None,
                marks_until: float | None = None) -> float | None:
    """Give one event to the handler and mark it done; None when it moved on (delivered or
    dead-lettered), else the delay before the next attempt."""
    name, event_id = loaded.name, record["id"]
    began = time.monotonic()
    try:
        loaded.handler.handle(Event.from_dict(record))
    except Exception as exc:  # a plugin may raise anything: isolate it here
        return _failed(store, loaded, queue, record, exc, admitted=admitted, journal=journal,
                       seconds=time.monotonic() - began)
    # At once: a crash after this does not deliver it twice.
    earlier = _mark_done(store, name, event_id,
                         time.monotonic() + MARK_PATIENCE if marks_until is None else marks_until)
    if journal is not None:
        journal.note_attempt(Attempt(event_id, name, earlier + 1, "success",
                                     duration_ms=(time.monotonic() - began) * 1000))
    HANDLER_DELIVERIES.labels(name, "success").inc()
    gate.note_call(store, loaded, time.monotonic() - began, admitted)
    gate.note_recovery(store, loaded, admitted)
    log.info("delivered event=%s kind=%s handler=%s", event_id, record.get("kind"), name)
    return None


def _mark_done(store: Store, handler: str, event_id: str, deadline: float) -> int:
    """The handler has the event: a mark the store refuses (a full disk, say) would hand it over
    again on the retry, so it is tried again here for a while before the task waits as usual.
    Returns the event's failed attempts before this one."""
    for attempt in itertools.count(1):
        try:
            return store.progress.mark_done(handler, event_id)
        except Exception as exc:
            if not is_wait(exc) or time.monotonic() > deadline:
                raise
            # The store's refusal lasts until room comes back; never past the deadline.
            time.sleep(max(0.0, min(0.25 * attempt, 2.0, deadline - time.monotonic())))
    raise AssertionError("unreachable: itertools.count never ends")


def _failed(store: Store, loaded: LoadedHandler, queue: DeliveryQueue, record: dict,
            exc: Exception, *, admitted: gate.Pass | None, journal: EventLog | None = None,
            seconds: float = 0.0) -> float | None:
    attempts, first_failure = store.progress.note_failure(loaded.name, record["id"])
    log.warning("handler=%s event=%s attempt=%d failed: %s", loaded.name, record["id"],
                attempts, type(exc).__name__)
    rejected = isinstance(exc, HandlerRejected)
    pause = None if rejected else gate.note_failure(store, loaded)
    # max_age counts from the event's first failure, or from when its handler began to fail
    # (the probe after a pause may be the event's first attempt).
    outage = admitted.breaker.since if admitted and admitted.breaker.since else first_failure
    policy = loaded.config
    exhausted = attempts >= policy.max_attempts or time.time() - min(first_failure, outage) >= policy.max_age
    if journal is not None:
        journal.note_attempt(Attempt(record["id"], loaded.name, attempts,
                                     "dead_letter" if exhausted or rejected else "retry",
                                     error=error_text(exc), duration_ms=seconds * 1000))
    if not (exhausted or rejected):
        HANDLER_DELIVERIES.labels(loaded.name, "retry").inc()
        return max(backoff(attempts), pause or 0.0)
    _dead_letter(store, loaded, queue, record, attempts=attempts, first_failure=first_failure,
                 error=f"{type(exc).__name__}: {exc}")
    return None


def _give_up_on(store: Store, loaded: LoadedHandler, queue: DeliveryQueue, *, since: float,
                journal: EventLog | None = None) -> None:
    """Dead-letter the queue's waiting events (one batch): their handler has failed too long."""
    records = store.queues.peek(queue.name, BATCH)
    done = store.progress.done_many([(loaded.name, record["id"]) for record in records])
    error = f"HandlerPaused: failing and paused since {time.time() - since:.0f}s (max_age)"
    for record, had in zip(records, done, strict=True):
        if had:
            store.queues.dequeue(queue.name, record["id"])
            continue
        attempts, first_failure = store.progress.attempts(loaded.name, record["id"])
        if journal is not None:
            journal.note_attempt(Attempt(record["id"], loaded.name, attempts + 1, "dead_letter", error=error))
        _dead_letter(store, loaded, queue, record, attempts=attempts,
                     first_failure=min(first_failure or since, since), error=error)


def _dead_letter(store: Store, loaded: LoadedHandler, queue: DeliveryQueue, record: dict, *,
                 attempts: int, first_failure: float, error: str) -> None:
    HANDLER_DELIVERIES.labels(loaded.name, "dead_letter").inc()
    store.dead_letters.add(DeadLetter(
        handler=loaded.name, event=record, attempts=attempts, error=error[:1000],
        first_failed_at=first_failure, failed_at=time.time()))
    store.progress.clear_attempts(loaded.name, record["id"])
    store.queues.dequeue(queue.name, record["id"])
    log.error("handler=%s event=%s dead-lettered after %d attempts", loaded.name, record["id"], attempts)
