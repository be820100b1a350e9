"""Queueing settled events for every handler that accepts them, oldest first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.records import DeliveryQueue, Event

if TYPE_CHECKING:
    from workers.runtime.context import Runtime


def dispatch(rt: Runtime, events: list[Event]) -> None:
    """Queue events for every handler that accepts their kind and does not have them yet.

    All are queued, oldest first, before any drain task starts, so that a handler sees them in
    timestamp order.
    """
    queues: dict[DeliveryQueue, None] = {}
    for event in sorted(events, key=lambda e: e.timestamp or 0):
        for loaded in rt.handlers.values():
            if loaded.accepts(event.kind) and not rt.store.progress.is_done(loaded.name, event.id):
                queue = DeliveryQueue.of(loaded.name, event)
                enqueue(rt, queue, event)
                queues[queue] = None
    for queue in queues:
        rt.scheduler.schedule(queue)


def enqueue(rt: Runtime, queue: DeliveryQueue, event: Event) -> None:
    """Put one event in a handler's queue, ordered by its timestamp."""
    rt.store.queues.enqueue(queue.name, event.id, event.to_dict(), score=event.timestamp or 0)
