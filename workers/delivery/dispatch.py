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
    wanted = [(loaded.name, event) for event in sorted(events, key=lambda e: e.timestamp or 0)
              for loaded in rt.handlers.values() if loaded.accepts(event.kind)]
    done = rt.store.progress.done_many([(name, event.id) for name, event in wanted])
    todo = [(DeliveryQueue.of(name, event), event) for (name, event), had in zip(wanted, done, strict=True)
            if not had]
    rt.store.queues.enqueue_many([(queue.name, event.id, event.to_dict(), event.timestamp or 0)
                                  for queue, event in todo])
    for queue in dict.fromkeys(queue for queue, _ in todo):  # each queue once, in order
        rt.scheduler.schedule(queue)


def enqueue(rt: Runtime, queue: DeliveryQueue, event: Event) -> None:
    """Put one event in a handler's queue, ordered by its timestamp."""
    rt.store.queues.enqueue(queue.name, event.id, event.to_dict(), score=event.timestamp or 0)
