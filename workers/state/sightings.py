"""Which event first brought a message id: a message that arrives by webhook and by sync (or a
sweep) reaches the handlers once, whichever came first."""

from __future__ import annotations

from typing import Literal

from workers.state.base import Concern, text

# "new", "again" (the same event once more), or the source of the other event that came first
Sighting = Literal["new", "again", "webhook", "sync", "sweep"]
SOURCES: dict[str, Sighting] = {"webhook": "webhook", "sync": "sync", "sweep": "sweep"}


class Sightings(Concern):
    """message id -> the event id that brought it, per account."""

    ttl: float = 30 * 86400.0

    def claim(self, account_id: str, mid: str, event_id: str, source: str) -> Sighting:
        """Record that `event_id` (from `source`) brings `mid`; see `Sighting` for the answer."""
        key = self._key("seen", account_id, mid)
        if self._redis.set(key, f"{source}:{event_id}", nx=True, ex=int(self.ttl)):
            return "new"
        first_source, _, first_id = text(self._redis.get(key) or "").partition(":")
        if not first_id or first_id == event_id:
            return "again"
        return SOURCES.get(first_source, "again")

    def seen(self, account_id: str, mid: str) -> bool:
        """Whether any event brought `mid`."""
        return bool(self._redis.exists(self._key("seen", account_id, mid)))
