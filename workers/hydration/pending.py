"""A message waiting in its account's hydration queue, and which read to try for it next."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from workers.records import Event

# new: any read may settle it; by_thread: not in the account's listing, read its conversation;
# by_id: listed without details, read the message itself.
Step = Literal["new", "by_thread", "by_id"]


@dataclass(frozen=True)
class Pending:
    """A queued message, the step hydration is at, and since when inbox-relay has had it.

    `since` (epoch seconds) starts the give-up clock: never the webhook's timestamp, which may be
    hours old for a delivery Meta retried, a replay or a synced message.
    """

    event: Event
    step: Step = "new"
    since: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        """The JSON-serialisable queue item."""
        return {"event": self.event.to_dict(), "step": self.step, "since": self.since}

    @classmethod
    def from_dict(cls, data: dict) -> Pending:
        """Rebuild a queue item."""
        return cls(Event.from_dict(data["event"]), data.get("step", "new"),
                   float(data.get("since") or time.time()))

    def at(self, step: Step, **changes: object) -> Pending:
        """The same message at another step, with some event fields changed."""
        event = self.event.replace(**changes) if changes else self.event
        return Pending(event, step, self.since)
