"""Routing events between the stages: hydration queues, handler queues, and their drain tasks."""

from __future__ import annotations

import logging
import random

from workers.events import Event
from workers.hydrate import unavailable
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def hydration_queue(event: Event) -> str:
    """The queue of messages of one conversation waiting for details."""
    return f"h|{event.thread_key}"


def delivery_queue(handler: str, event: Event) -> str:
    """The queue of one conversation's events waiting for one handler."""
    return f"d|{handler}|{event.thread_key}"


def route(rt: Runtime, event: Event, *, force: bool = False) -> None:
    """Send a freshly parsed event to hydration or straight to its handlers.

    `force` (a replay) hands the event again to handlers that already had it.
    """
    handlers = [h for h in rt.handlers.values() if h.accepts(event.kind)]
    if force:
        for loaded in handlers:
            rt.store.forget_done(loaded.name, event.id)
    elif handlers and all(rt.store.is_done(h.name, event.id) for h in handlers):
        return  # a repeated delivery: every handler already has this event
    if event.hydration == "pending":
        reason = _no_hydration_reason(rt, event)
        if reason is None:
            rt.store.enqueue(hydration_queue(event), event.to_dict())
            schedule(rt, hydration_queue(event), countdown=rt.settings.coalesce_seconds)
            return
        event = unavailable(event, reason)
    dispatch(rt, event)


def _no_hydration_reason(rt: Runtime, event: Event) -> str | None:
    if rt.settings.account_for(event.account_id) is None:
        return "no [[accounts]] entry for this account id"
    message = event.raw.get("message") if isinstance(event.raw, dict) else None
    if isinstance(message, dict) and message.get("is_deleted"):
        return "the message was deleted"
    return None


def dispatch(rt: Runtime, event: Event) -> None:
    """Queue an event for every handler that accepts its kind and does not have it yet."""
    for loaded in rt.handlers.values():
        if loaded.accepts(event.kind) and not rt.store.is_done(loaded.name, event.id):
            queue = delivery_queue(loaded.name, event)
            rt.store.enqueue(queue, event.to_dict())
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
    """Exponential backoff with full jitter for the `attempt`-th retry (1-based)."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return random.uniform(ceiling / 2, ceiling)
