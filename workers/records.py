"""The typed records that cross processes: events, queue names and dead letters."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

Kind = Literal["message", "echo", "message_edit", "message_delete", "reaction", "read", "delivery",
               "postback", "referral", "optin", "handover", "change", "unknown"]
Platform = Literal["messenger", "instagram"]
# "pending" only while an event waits for hydration; handlers receive the other three.
Hydration = Literal["pending", "complete", "unavailable", "not_applicable"]
Source = Literal["webhook", "sync", "sweep"]  # a webhook; history (sync); a gap the sweep found
KINDS: tuple[str, ...] = get_args(Kind)


def known_fields(record_type: type, data: dict) -> dict:
    """The items of `data` that are fields of the dataclass `record_type`: a record stored by a
    newer version still loads, without the fields this one does not know."""
    names = {f.name for f in dataclasses.fields(record_type)}
    return {key: value for key, value in data.items() if key in names}


@dataclass(frozen=True)
class Event:
    """One event as every handler receives it; add fields, never rename."""

    id: str
    kind: Kind
    platform: Platform | None
    account_id: str | None
    sender_id: str | None
    recipient_id: str | None
    timestamp: int | None
    mid: str | None
    conversation_id: str | None
    message: dict | None
    hydration: Hydration
    raw: Any
    hydration_error: str | None = None
    source: Source = "webhook"
    api_version: str | None = None  # the delivery's Facebook-API-Version; None for sync and sweep

    def to_dict(self) -> dict:
        """The JSON-serialisable event record (`raw` and `message` are shared, not copied)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> Event:
        """Rebuild an event from its record, ignoring fields this version does not know."""
        return cls(**known_fields(cls, data))

    def replace(self, **changes: Any) -> Event:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @property
    def customer_id(self) -> str | None:
        """The other party of the conversation: whichever of sender and recipient is not the account."""
        if self.sender_id and self.sender_id != self.account_id:
            return self.sender_id
        return self.recipient_id

    @property
    def thread_key(self) -> str:
        """Events of one conversation share this key; it orders delivery and coalesces hydration."""
        return f"{self.account_id}:{self.customer_id or self.kind}"


@dataclass(frozen=True)
class HydrationQueue:
    """An account's messages waiting for details, scored by when they are due."""

    account_id: str | None

    @property
    def name(self) -> str:
        """The queue's name in the store."""
        return f"h|{self.account_id}"


@dataclass(frozen=True)
class DeliveryQueue:
    """One conversation's events waiting for one handler, in timestamp order."""

    handler: str
    thread: str

    @property
    def name(self) -> str:
        """The queue's name in the store."""
        return f"d|{self.handler}|{self.thread}"

    @classmethod
    def of(cls, handler: str, event: Event) -> DeliveryQueue:
        """The queue of `event`'s conversation for `handler`."""
        return cls(handler, event.thread_key)


Queue = HydrationQueue | DeliveryQueue


def parse_queue(name: str) -> Queue:
    """The queue record a stored name stands for; ValueError for a name no version wrote."""
    stage, _, rest = name.partition("|")
    if stage == "h" and rest:
        return HydrationQueue(rest)
    handler, _, thread = rest.partition("|")
    if stage == "d" and handler and thread:
        return DeliveryQueue(handler, thread)
    raise ValueError(f"not a queue name: {name!r}")


@dataclass(frozen=True)
class DeadLetter:
    """An event a handler gave up on, with the error, the attempts and the times."""

    handler: str
    event: dict
    attempts: int
    error: str
    first_failed_at: float
    failed_at: float

    @property
    def key(self) -> str:
        """Unique per handler and event."""
        return f"{self.handler}:{self.event_id}"

    @property
    def event_id(self) -> str:
        """The id of the event that failed."""
        return str(self.event.get("id"))

    def to_dict(self) -> dict:
        """The JSON-serialisable letter."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DeadLetter:
        """Rebuild a stored letter, ignoring fields this version does not know."""
        return cls(**known_fields(cls, data))
