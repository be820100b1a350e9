"""Operator actions on dead letters: select, show, replay to their handler, purge."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workers.delivery.dispatch import enqueue
from workers.errors import AdminError
from workers.records import DeadLetter, DeliveryQueue, Event
from workers.state.dead_letters import DeadLetterStore

if TYPE_CHECKING:
    from workers.stage import Runtime

HIDDEN_EVENT_FIELDS = ("message", "raw")  # the fields that may hold message text


@dataclass(frozen=True)
class LetterFilter:
    """Which dead letters a command applies to; empty fields match everything."""

    handler: str | None = None
    kind: str | None = None
    account_id: str | None = None
    older_than: float | None = None  # seconds since the letter's last failure
    newer_than: float | None = None

    @property
    def is_empty(self) -> bool:
        """True when the filter would match every dead letter."""
        return all(value is None for value in (self.handler, self.kind, self.account_id,
                                               self.older_than, self.newer_than))

    def matches(self, letter: DeadLetter, *, now: float) -> bool:
        """Whether a dead letter passes every set criterion."""
        event, age = letter.event, now - letter.failed_at
        return ((self.handler is None or letter.handler == self.handler)
                and (self.kind is None or event.get("kind") == self.kind)
                and (self.account_id is None or event.get("account_id") == self.account_id)
                and (self.older_than is None or age >= self.older_than)
                and (self.newer_than is None or age <= self.newer_than))


def list_dead_letters(letters: DeadLetterStore, where: LetterFilter = LetterFilter(), *,
                      now: float | None = None) -> list[DeadLetter]:
    """The dead letters that match, oldest failure first."""
    now = time.time() if now is None else now
    return [letter for letter in letters.all() if where.matches(letter, now=now)]


def get_dead_letter(letters: DeadLetterStore, handler: str, event_id: str) -> DeadLetter:
    """One dead letter by handler name and event id; AdminError if there is none."""
    for letter in list_dead_letters(letters, LetterFilter(handler=handler)):
        if letter.event_id == event_id:
            return letter
    raise AdminError(f"no dead letter for handler '{handler}' and event '{event_id}'")


def replay_dead_letter(rt: Runtime, letter: DeadLetter) -> DeliveryQueue:
    """Queue a dead letter's event again for its handler alone; returns its queue."""
    if letter.handler not in rt.handlers:
        raise AdminError(f"handler '{letter.handler}' is not configured; add it to [[handlers]] to replay")
    event = Event.from_dict(letter.event)
    queue = DeliveryQueue.of(letter.handler, event)
    # The handler may have succeeded once before; a replay is a deliberate second delivery.
    rt.store.progress.forget_done(letter.handler, event.id)
    enqueue(rt, queue, event)
    rt.scheduler.schedule(queue)
    # Removed last: if scheduling failed, the letter stays and the replay can be repeated.
    rt.store.dead_letters.remove(letter)
    return queue


def replay_dead_letters(rt: Runtime, where: LetterFilter) -> int:
    """Replay every matching dead letter; returns how many (none if a handler is missing)."""
    letters = list_dead_letters(rt.store.dead_letters, where)
    missing = sorted({letter.handler for letter in letters} - set(rt.handlers))
    if missing:
        raise AdminError(f"handler(s) {', '.join(missing)} not configured; add them to [[handlers]] "
                         "or narrow the selection with --handler")
    for letter in letters:
        replay_dead_letter(rt, letter)
    return len(letters)


def remove_dead_letters(letters: DeadLetterStore, selected: list[DeadLetter]) -> int:
    """Delete exactly these dead letters (as listed earlier); returns how many."""
    for letter in selected:
        letters.remove(letter)
    return len(selected)


def letter_summary(letter: DeadLetter, *, with_body: bool = False) -> dict:
    """A dead letter for display; the event's message text and raw item only when asked."""
    event = dict(letter.event)
    if not with_body:
        for name in HIDDEN_EVENT_FIELDS:
            event.pop(name, None)
    return {**letter.to_dict(), "event": event}
