"""Whether a handler may be called now: a free slot of its `concurrency`, and its circuit breaker.

Handlers share the worker pool; a handler whose calls hang would otherwise hold every pool process
and starve the others. Slots bound how many processes one handler can hold; the breaker stops
calling a handler that keeps failing, so its waiting events cost no process at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from workers.delivery.plugins import LoadedHandler
from workers.metrics import HANDLER_PAUSES
from workers.scheduler import TASK_ID
from workers.state import Store
from workers.state.breakers import BreakerState

log = logging.getLogger(__name__)
BUSY_WAIT = 0.25   # seconds: the first wait of a drain task that found every slot taken
MAX_PAUSE = 600.0  # pauses double while the probe after each fails, up to this
SLOW_CALL = 0.5    # seconds: a call that took longer keeps its handler out of inline delivery
SLOW_FOR = 60.0    # for this long
FAST_FOR = 600.0   # a quick call lets its handler be called inline for this long


@dataclass(frozen=True)
class Wait:
    """The handler may not be called now: why, for how long at least, since when it fails."""

    reason: Literal["paused", "busy", "not_inline"]
    seconds: float
    since: float | None = None


@dataclass(frozen=True)
class Pass:
    """A slot of a handler, held by `holder`, with what its breaker said when it was taken."""

    holder: str
    breaker: BreakerState


def admit(store: Store, loaded: LoadedHandler, *, lease: float, inline: bool = False) -> Pass | Wait:
    """Take a slot of the handler unless it is paused or all its slots are held (or, `inline`,
    unless it was slow or failing lately or has not proven quick: a task with other work to do
    must not wait on it; a deliver task calls it instead)."""
    state = store.breakers.state(loaded.name)
    if state.paused_for > 0:
        return Wait("paused", state.paused_for, since=state.since)
    if inline and not state.inline_ok:
        return Wait("not_inline", 0.0)
    holder = TASK_ID.get()  # a task redelivered after its worker died keeps its own slot
    if not store.slots.take(loaded.name, holder, limit=loaded.config.concurrency, ttl=lease):
        return Wait("busy", BUSY_WAIT, since=state.since)
    return Pass(holder, state)


def leave(store: Store, loaded: LoadedHandler, admitted: Pass) -> None:
    """Give the slot back."""
    store.slots.give_back(loaded.name, admitted.holder)


def note_call(store: Store, loaded: LoadedHandler, seconds: float, admitted: Pass | None) -> None:
    """A call succeeded in `seconds`: a slow one keeps the handler out of inline delivery, a
    quick one lets it in (renewed when half its time is gone: no round trip per event)."""
    if seconds > SLOW_CALL:
        store.breakers.note_slow(loaded.name, seconds=SLOW_FOR)
    elif admitted is None or admitted.breaker.fast_for < FAST_FOR / 2:
        store.breakers.note_fast(loaded.name, seconds=FAST_FOR)


def note_failure(store: Store, loaded: LoadedHandler) -> float | None:
    """Count a failed attempt; the pause it opened, if it opened one (logged once per pause)."""
    config = loaded.config
    opened = store.breakers.failed(loaded.name, threshold=config.pause_after, pause=config.pause_for,
                                   max_pause=MAX_PAUSE)
    if opened is None:
        return None
    number, seconds = opened
    HANDLER_PAUSES.labels(loaded.name).inc()
    log.warning("handler=%s paused for %.0fs (pause %d in a row) after failed attempts; its events "
                "wait", loaded.name, seconds, number)
    return seconds


def note_recovery(store: Store, loaded: LoadedHandler, admitted: Pass | None) -> None:
    """A call succeeded: close the breaker if it was counting failures or paused."""
    was = admitted.breaker if admitted else None
    if was is not None and not (was.failures or was.pauses):
        return  # nothing to close: no round trip
    if store.breakers.succeeded(loaded.name) and was is not None and was.pauses:
        log.info("handler=%s answers again after %d pause(s); breaker closed", loaded.name, was.pauses)
