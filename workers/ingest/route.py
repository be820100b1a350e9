"""Routing freshly parsed events: to their account's hydration queue, or straight to handlers."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from workers.delivery.dispatch import dispatch
from workers.hydration.fallback import unavailable
from workers.hydration.pending import Pending
from workers.metrics import EVENTS
from workers.records import Event, HydrationQueue

if TYPE_CHECKING:
    from workers.stage import Runtime

BRINGS_A_MESSAGE = {"message", "echo"}  # the kinds a sync or sweep brings too
UNSENT_LOOKUP = 1000  # queued messages an unsend looks through for its own


def route(rt: Runtime, events: list[Event], *, force: bool = False) -> Counter[str]:
    """Send events to hydration or to their handlers; `force` (a replay) repeats delivered ones.
    Returns where they went, for the delivery's log line."""
    if force:
        for event in events:
            for loaded in rt.handlers.values():
                rt.store.progress.forget_done(loaded.name, event.id)
    ready: list[Event] = []
    hydrating: dict[HydrationQueue, int] = {}  # messages queued per account, in arrival order
    where: Counter[str] = Counter()
    for event in events:
        EVENTS.labels(event.kind, event.platform or "none").inc()
        if not force and _brought_by_another(rt, event):
            where["already brought by a sync or sweep"] += 1
            continue
        if event.kind == "message_delete":
            ready += _unsent_while_hydrating(rt, event)
        reason = no_hydration_reason(rt, event) if event.hydration == "pending" else None
        if event.hydration != "pending" or reason is not None:
            ready.append(unavailable(event, reason) if reason else event)  # dispatch skips done ones
        elif not _every_handler_has(rt, event):
            queue = HydrationQueue(event.account_id)
            rt.store.queues.enqueue(queue.name, event.id, Pending(event).to_dict(),
                                    score=time.time() * 1000)
            hydrating[queue] = hydrating.get(queue, 0) + 1
            where["to hydration"] += 1
        else:  # a repeated delivery every handler already has: no Graph call for it
            where["already delivered"] += 1
    where.update(dispatch(rt, ready))
    for queue, count in hydrating.items():
        rt.scheduler.schedule(queue, countdown=_gathering_time(rt, queue, count))
    return where


def _unsent_while_hydrating(rt: Runtime, delete: Event) -> list[Event]:
    """The unsent message itself, if it still waits for hydration: taken off the queue and handed
    on as it came, so that a handler gets it before its delete (both go in timestamp order) and
    not after, which would leave it holding a copy of a message its sender unsent."""
    queue = HydrationQueue(delete.account_id)
    waiting = [Pending.from_dict(item).event for item in rt.store.queues.peek(queue.name, UNSENT_LOOKUP)]
    found = [event for event in waiting if event.mid == delete.mid and event.kind != "message_delete"]
    rt.store.queues.dequeue(queue.name, *[event.id for event in found])
    return [unavailable(event, "unsent by its sender before it was hydrated") for event in found]


def _gathering_time(rt: Runtime, queue: HydrationQueue, queued: int) -> float:
    """0 when the account is idle: its budget has a free call and no other message of it waits, so
    waiting would only add latency. Else coalesce_seconds: the burst this message is part of
    gathers for one call (a task already waiting for budget or in a call takes it in anyway)."""
    account = rt.settings.account_for(queue.account_id)
    idle = (account is not None and rt.store.queues.length(queue.name) <= queued
            and rt.store.budgets.free_now(account.page_id))
    return 0.0 if idle else rt.settings.hydration.coalesce_seconds


def _brought_by_another(rt: Runtime, event: Event) -> bool:
    # Only a message itself is what a sync or sweep brings. An edit is news about a message
    # brought before: it must neither be left out nor claim the mid (the sync would then leave
    # the message itself out).
    if event.kind not in BRINGS_A_MESSAGE or event.hydration != "pending" or not event.mid:
        return False
    # Webhooks that differ for one message (say, messaging and standby) all go on; only a
    # message a sync or sweep already brought is left out.
    seen = rt.store.sightings.claim(event.account_id or "", event.mid, event.id, event.source)
    return seen in ("sync", "sweep")


def _every_handler_has(rt: Runtime, event: Event) -> bool:
    handlers = [h for h in rt.handlers.values() if h.accepts(event.kind)]
    return bool(handlers) and all(rt.store.progress.done_many([(h.name, event.id) for h in handlers]))


def no_hydration_reason(rt: Runtime, event: Event) -> str | None:
    """Why a message cannot be hydrated at all (no account configured), or None. An unsent
    message never gets here: it is kind `message_delete`, with nothing to read."""
    if rt.settings.account_for(event.account_id) is None:
        return "no [[accounts]] entry for this account id"
    return None
