"""A message waiting in its account's hydration queue, and which read to try for it next."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from workers.records import Event

# new: any read may settle it; by_thread: not in the account's listing, read its conversation;
# by_id: listed without details, read the message itself.
Step = Literal["new", "by_thread", "by_id"]


@dataclass(frozen=True)
class Pending:
    """A queued message and the step hydration is at; the event's own fields stay public ones."""

    event: Event
    step: Step = "new"

    def to_dict(self) -> dict:
        """The JSON-serialisable queue item."""
        return {"event": self.event.to_dict(), "step": self.step}

    @classmethod
    def from_dict(cls, data: dict) -> Pending:
        """Rebuild a queue item."""
        return cls(Event.from_dict(data["event"]), data.get("step", "new"))

    def at(self, step: Step, **changes: object) -> Pending:
        """The same message at another step, with some event fields changed."""
        return Pending(self.event.replace(**changes) if changes else self.event, step)
