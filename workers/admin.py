"""Operator actions on dead letters (Store) and received deliveries (the web node's inbox)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Protocol

from workers import pipeline
from workers.errors import RelayError
from workers.events import Event
from workers.runtime import Runtime
from workers.store import Store

HIDDEN_EVENT_FIELDS = ("message", "raw")  # the fields that may hold message text


class AdminError(RelayError):
    """An administration request names something that does not exist or cannot be done."""


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

    def matches(self, letter: dict, *, now: float) -> bool:
        """Whether a dead letter passes every set criterion."""
        event, age = letter.get("event") or {}, now - float(letter.get("failed_at") or 0)
        return ((self.handler is None or letter.get("handler") == self.handler)
                and (self.kind is None or event.get("kind") == self.kind)
                and (self.account_id is None or event.get("account_id") == self.account_id)
                and (self.older_than is None or age >= self.older_than)
                and (self.newer_than is None or age <= self.newer_than))


def list_dead_letters(store: Store, where: LetterFilter = LetterFilter(), *,
                      now: float | None = None) -> list[dict]:
    """The dead letters that match, oldest failure first."""
    now = time.time() if now is None else now
    return [letter for letter in store.dead_letters() if where.matches(letter, now=now)]


def get_dead_letter(store: Store, handler: str, event_id: str) -> dict:
    """One dead letter by handler name and event id; AdminError if there is none."""
    for letter in list_dead_letters(store, LetterFilter(handler=handler)):
        if letter["event"].get("id") == event_id:
            return letter
    raise AdminError(f"no dead letter for handler '{handler}' and event '{event_id}'")


def replay_dead_letter(rt: Runtime, letter: dict) -> str:
    """Queue a dead letter's event again for its handler alone; returns the queue name."""
    handler, record = letter["handler"], letter["event"]
    if handler not in rt.handlers:
        raise AdminError(f"handler '{handler}' is not configured; add it to [[handlers]] to replay")
    queue = pipeline.delivery_queue(handler, Event.from_dict(record))
    # The handler may have succeeded once before; a replay is a deliberate second delivery.
    rt.store.forget_done(handler, record["id"])
    rt.store.enqueue(queue, record)
    pipeline.schedule(rt, queue)
    # Removed last: if scheduling failed, the letter stays and the replay can be repeated.
    rt.store.remove_dead_letter(handler, record["id"])
    return queue


def replay_dead_letters(rt: Runtime, where: LetterFilter) -> int:
    """Replay every matching dead letter; returns how many (none if a handler is missing)."""
    letters = list_dead_letters(rt.store, where)
    missing = sorted({letter["handler"] for letter in letters} - set(rt.handlers))
    if missing:
        raise AdminError(f"handler(s) {', '.join(missing)} not configured; add them to [[handlers]] "
                         "or narrow the selection with --handler")
    for letter in letters:
        replay_dead_letter(rt, letter)
    return len(letters)


def purge_dead_letters(store: Store, where: LetterFilter) -> int:
    """Delete every matching dead letter for good; returns how many."""
    return remove_dead_letters(store, list_dead_letters(store, where))


def remove_dead_letters(store: Store, letters: list[dict]) -> int:
    """Delete exactly these dead letters (as listed earlier); returns how many."""
    for letter in letters:
        store.remove_dead_letter(letter["handler"], letter["event"]["id"])
    return len(letters)


def letter_summary(letter: dict, *, with_body: bool = False) -> dict:
    """A dead letter for display; the event's message text and raw item only when asked."""
    event = dict(letter.get("event") or {})
    if not with_body:
        for name in HIDDEN_EVENT_FIELDS:
            event.pop(name, None)
    return {**letter, "event": event}


# -- deliveries: the local inbox of a web node ----------------------------------------------------
class InboxLike(Protocol):
    """The parts of webhook_app.inbox.Inbox used here (workers never import Flask code)."""

    def list(self, *, limit: int = 50, since: float | None = None) -> list: ...
    def get(self, delivery_id: int): ...
    def append(self, body: bytes, *, force: bool = False) -> int: ...


@dataclass(frozen=True)
class DeliveryInfo:
    """What an operator sees of one recorded delivery; the body only on request."""

    id: int
    received_at: float
    size: int
    published_at: float | None
    force: bool
    object: str | None
    entries: int | None
    body: bytes | None = None

    @property
    def published(self) -> bool:
        """Whether the relay has handed it to the broker."""
        return self.published_at is not None


def describe_delivery(delivery, *, with_body: bool = False) -> DeliveryInfo:
    """Summarise a delivery: size, envelope `object` and entry count, parsed from the body."""
    kind, entries = _envelope_shape(delivery.body)
    return DeliveryInfo(id=delivery.id, received_at=delivery.received_at, size=len(delivery.body),
                        published_at=delivery.published_at, force=delivery.force, object=kind,
                        entries=entries, body=delivery.body if with_body else None)


def _envelope_shape(body: bytes) -> tuple[str | None, int | None]:
    try:
        envelope = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(envelope, dict):
        return None, None
    kind, entry = envelope.get("object"), envelope.get("entry")
    return (kind if isinstance(kind, str) else None,
            len(entry) if isinstance(entry, list) else None)


def list_deliveries(inbox: InboxLike, *, limit: int = 50, since: float | None = None,
                    with_body: bool = False) -> list[DeliveryInfo]:
    """The newest recorded deliveries first."""
    return [describe_delivery(d, with_body=with_body) for d in inbox.list(limit=limit, since=since)]


def replay_delivery(inbox: InboxLike, delivery_id: int) -> int:
    """Record a delivery's body again, forced through to every handler; returns the new id."""
    delivery = inbox.get(delivery_id)
    if delivery is None:
        raise AdminError(f"no delivery {delivery_id} in the inbox")
    return inbox.append(delivery.body, force=True)
