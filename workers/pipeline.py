"""Routing events between the stages: hydration queues, handler queues, and their drain tasks."""

from __future__ import annotations

import logging
import random
import time

from workers.events import Event
from workers.hydrate import unavailable
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def hydration_queue(event: Event) -> str:
    """The queue of an account's messages waiting for details (scored by when they are due)."""
    return f"h|{event.account_id}"


def delivery_queue(handler: str, event: Event) -> str:
    """The queue of one conversation's events waiting for one handler."""
    return f"d|{handler}|{event.thread_key}"


def route(rt: Runtime, events: list[Event], *, force: bool = False) -> None:
    """Send freshly parsed events to hydration or straight to their handlers.

    `force` (a replay) hands events again to handlers that already had them.
    """
    ready, hydrating = [], []
    for event in events:
        handlers = [h for h in rt.handlers.values() if h.accepts(event.kind)]
        if force:
            for loaded in handlers:
                rt.store.forget_done(loaded.name, event.id)
        reason = _no_hydration_reason(rt, event) if event.hydration == "pending" else None
        if event.hydration != "pending" or reason is not None:
            ready.append(unavailable(event, reason) if reason else event)  # dispatch skips done ones
        elif force or not handlers or not all(rt.store.is_done(h.name, event.id) for h in handlers):
            rt.store.enqueue(hydration_queue(event), event.to_dict(), score=time.time() * 1000)
            hydrating.append(hydration_queue(event))
        # else: a repeated delivery every handler already has: no Graph call for it
    dispatch(rt, *ready)
    for queue in dict.fromkeys(hydrating):
        schedule(rt, queue, countdown=rt.settings.coalesce_seconds)


def _no_hydration_reason(rt: Runtime, event: Event) -> str | None:
    if rt.settings.account_for(event.account_id) is None:
        return "no [[accounts]] entry for this account id"
    message = event.raw.get("message") if isinstance(event.raw, dict) else None
    if isinstance(message, dict) and message.get("is_deleted"):
        return "the message was deleted"
    return None


def dispatch(rt: Runtime, *events: Event) -> None:
    """Queue events for every handler that accepts their kind and does not have them yet.

    All are queued, oldest first, before any drain task starts, so that a handler sees them in
    timestamp order.
    """
    queues = []
    for event in sorted(events, key=lambda e: e.timestamp or 0):
        for loaded in rt.handlers.values():
            if loaded.accepts(event.kind) and not rt.store.is_done(loaded.name, event.id):
                queues.append(delivery_queue(loaded.name, event))
                rt.store.enqueue(queues[-1], event.to_dict())
    for queue in dict.fromkeys(queues):
        schedule(rt, queue)


def schedule(rt: Runtime, queue: str, *, countdown: float = 0.0) -> None:
    """Start a drain task for `queue` unless one is already on it."""
    from workers.tasks import task_for_queue

    if not rt.store.claim(queue, ttl=rt.settings.visibility_timeout):
        return
    try:
        task_for_queue(queue).apply_async((queue,), countdown=countdown)
    except Exception:
        rt.store.release(queue)
        raise


def finish(rt: Runtime, queue: str) -> None:
    """A drain task is done: give its flag back and start another if events arrived meanwhile."""
    rt.store.release(queue)
    if rt.store.queue_length(queue):
        countdown = rt.settings.coalesce_seconds if queue.startswith("h|") else 0.0
        schedule(rt, queue, countdown=countdown)


def backoff(attempt: int, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential backoff with jitter (half to all of the doubling step) for retry `attempt` (1-based)."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return random.uniform(ceiling / 2, ceiling)
