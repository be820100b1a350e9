"""Handing queued events to one handler, in timestamp order; retry, then dead-letter."""

from __future__ import annotations

import logging
import time

from workers.delivery.plugins import LoadedHandler
from workers.errors import HandlerRejected
from workers.metrics import HANDLER_DELIVERIES
from workers.records import DeadLetter, DeliveryQueue, Event
from workers.scheduler import backoff
from workers.state import Store

log = logging.getLogger(__name__)
BATCH = 100
TIME_BUDGET = 10.0   # seconds one task spends on a queue before handing over (time limits)


def drain(store: Store, loaded: LoadedHandler, queue: DeliveryQueue,
          time_budget: float = TIME_BUDGET) -> float | None:
    """Deliver the queue's events oldest first; returns a retry delay if the head must wait
    (0 when the time budget ran out first)."""
    started = time.monotonic()
    records = store.queues.peek(queue.name, BATCH)
    done = store.progress.done_many([(loaded.name, record["id"]) for record in records])
    moved_on: list[str] = []
    try:
        for record, had in zip(records, done, strict=True):
            if time.monotonic() - started > time_budget:
                return 0.0  # go on in a fresh task
            if not had:
                delay = deliver_one(store, loaded, queue, record)
                if delay is not None:
                    return delay
            moved_on.append(record["id"])
    finally:
        # One round trip for the batch. Should it not happen, the events stay queued but marked
        # done: the next drain skips and removes them.
        store.queues.dequeue(queue.name, *moved_on)
    return None


def deliver_one(store: Store, loaded: LoadedHandler, queue: DeliveryQueue,
                record: dict) -> float | None:
    """Give one event to the handler and mark it done; None when it moved on (delivered or
    dead-lettered), else the delay before the next attempt."""
    name, event_id = loaded.name, record["id"]
    try:
        loaded.handler.handle(Event.from_dict(record))
    except Exception as exc:  # a plugin may raise anything: isolate it here
        return _failed(store, loaded, queue, record, exc)
    store.progress.mark_done(name, event_id)  # at once: a crash after this does not deliver it twice
    HANDLER_DELIVERIES.labels(name, "success").inc()
    log.info("delivered event=%s kind=%s handler=%s", event_id, record.get("kind"), name)
    return None


def _failed(store: Store, loaded: LoadedHandler, queue: DeliveryQueue, record: dict,
            exc: Exception) -> float | None:
    attempts, first_failure = store.progress.note_failure(loaded.name, record["id"])
    log.warning("handler=%s event=%s attempt=%d failed: %s", loaded.name, record["id"],
                attempts, type(exc).__name__)
    policy = loaded.config
    exhausted = attempts >= policy.max_attempts or time.time() - first_failure >= policy.max_age
    if not (exhausted or isinstance(exc, HandlerRejected)):
        HANDLER_DELIVERIES.labels(loaded.name, "retry").inc()
        return backoff(attempts)
    HANDLER_DELIVERIES.labels(loaded.name, "dead_letter").inc()
    store.dead_letters.add(DeadLetter(
        handler=loaded.name, event=record, attempts=attempts,
        error=f"{type(exc).__name__}: {exc}"[:1000], first_failed_at=first_failure,
        failed_at=time.time()))
    store.progress.clear_attempts(loaded.name, record["id"])
    store.queues.dequeue(queue.name, record["id"])
    log.error("handler=%s event=%s dead-lettered after %d attempts", loaded.name, record["id"], attempts)
    return None
