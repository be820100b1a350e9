"""Queueing settled events for every handler that accepts them, oldest first."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from typing import TYPE_CHECKING

from workers.delivery import gate
from workers.delivery.drain import drain
from workers.records import DeliveryQueue, Event

if TYPE_CHECKING:
    from workers.stage import Runtime


def dispatch(rt: Runtime, events: list[Event]) -> Counter[str]:
    """Queue events for every handler that accepts their kind and does not have them yet; returns
    where they went (`to jsonl`, `already delivered`, `no handler takes read`), for the log.

    All are queued, oldest first, before any drain task starts, so that a handler sees them in
    timestamp order.
    """
    wanted = [(loaded.name, event) for event in sorted(events, key=lambda e: e.timestamp or 0)
              for loaded in rt.handlers.values() if loaded.accepts(event.kind)]
    done = rt.store.progress.done_many([(name, event.id) for name, event in wanted])
    todo = [(DeliveryQueue.of(name, event), event) for (name, event), had in zip(wanted, done, strict=True)
            if not had]
    taken = {event.id for _, event in wanted}
    if rt.journal is not None:  # written at the task's end; an event every handler had is logged already
        needed = {event.id for _, event in todo}
        rt.journal.note_events([event for event in events if event.id in needed or event.id not in taken])
    where = Counter(f"no handler takes {event.kind}" for event in events if event.id not in taken)
    where.update("already delivered" if had else f"to {name}"
                 for (name, _), had in zip(wanted, done, strict=True))
    rt.store.queues.enqueue_many([(queue.name, event.id, event.to_dict(), event.timestamp or 0)
                                  for queue, event in todo])
    queues = list(dict.fromkeys(queue for queue, _ in todo))  # each queue once, in order
    if rt.deliver_inline_for > 0:
        deliver_here(rt, rt.scheduler.claim_many(queues))
    else:
        for queue in queues:
            rt.scheduler.schedule(queue)
    return where


def deliver_here(rt: Runtime, queues: list[DeliveryQueue]) -> None:
    """Drain queues whose flags this task holds, in this task: no task message per queue.

    A queue whose handler must wait (paused, every slot taken, slow or failing lately: this task
    has other work), or that the time budget does not reach, goes on in a deliver task; a queue
    that took new events meanwhile is handed to one too (Scheduler.finish).
    """
    deadline = time.monotonic() + rt.deliver_inline_for
    ordered = sorted(queues, key=lambda queue: queue.handler)  # one slot per handler at a time
    admitted: tuple[str, gate.Pass | gate.Wait] | None = None
    n = 0
    try:
        for n, queue in enumerate(ordered):  # noqa: B007 (n names the rest on failure)
            loaded = rt.handlers[queue.handler]
            if admitted is None or admitted[0] != loaded.name:
                _leave(rt, admitted)
                admitted = (loaded.name, gate.admit(rt.store, loaded, lease=rt.settings.slot_lease,
                                                    inline=True))
            delay = _drain_inline(rt, queue, admitted[1], deadline - time.monotonic())
            if delay is None:
                rt.scheduler.finish(queue)
            else:
                rt.scheduler.send(queue, countdown=min(delay, rt.settings.max_countdown))
    except BaseException:
        with contextlib.suppress(Exception):  # the store may be out of reach: the flags expire
            for rest in ordered[n:]:
                rt.store.flags.release(rest.name)
        raise
    finally:
        with contextlib.suppress(Exception):  # the store may be out of reach: the lease expires
            _leave(rt, admitted)


def _drain_inline(rt: Runtime, queue: DeliveryQueue, admitted: gate.Pass | gate.Wait,
                  left: float) -> float | None:
    if isinstance(admitted, gate.Wait):
        # A deliver task takes it from here; it dead-letters by max_age if the pause lasts.
        return admitted.seconds
    if left <= 0:
        return 0.0
    return drain(rt.store, rt.handlers[queue.handler], queue, time_budget=left, admitted=admitted,
                 journal=rt.journal)


def _leave(rt: Runtime, admitted: tuple[str, gate.Pass | gate.Wait] | None) -> None:
    if admitted is not None and isinstance(admitted[1], gate.Pass):
        gate.leave(rt.store, rt.handlers[admitted[0]], admitted[1])


def enqueue(rt: Runtime, queue: DeliveryQueue, event: Event) -> None:
    """Put one event in a handler's queue, ordered by its timestamp."""
    rt.store.queues.enqueue(queue.name, event.id, event.to_dict(), score=event.timestamp or 0)
