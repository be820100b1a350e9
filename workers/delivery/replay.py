"""`events replay`: an event from the event log handed again to one handler, or to every handler
that takes its kind, through the normal queues; the replay is logged as an attempt (pending)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.delivery.dispatch import enqueue
from workers.errors import AdminError
from workers.events.log import Attempt
from workers.records import DeliveryQueue, Event

if TYPE_CHECKING:
    from workers.stage import Runtime


def replay_event(rt: Runtime, event: Event, handler: str | None = None) -> list[str]:
    """Queue `event` again for `handler` (or every handler that takes its kind): the handlers it
    went to. A deliberate second delivery: the handler gets it even if it had it."""
    if handler is not None and handler not in rt.handlers:
        raise AdminError(f"handler '{handler}' is not configured (configured: {', '.join(rt.handlers)})")
    names = [handler] if handler else [h.name for h in rt.handlers.values() if h.accepts(event.kind)]
    for name in names:
        if rt.journal is not None:  # before the queue: the delivery that follows is logged after it
            rt.journal.note_attempt(Attempt(event.id, name, rt.journal.last_attempt(event.id, name) + 1,
                                            "pending", error="replayed by `inbox-relay events replay`"))
        queue = DeliveryQueue.of(name, event)
        rt.store.progress.forget_done(name, event.id)
        enqueue(rt, queue, event)
        rt.scheduler.schedule(queue)
    return names
