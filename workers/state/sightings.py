"""Which event first brought a message id: a message that arrives by webhook and by sync (or a
sweep) reaches the handlers once, whichever came first."""

from __future__ import annotations

from typing import Literal

from workers.state.base import Concern, text

Sighting = Literal["new", "again", "other"]


class Sightings(Concern):
    """message id -> the event id that brought it, per account."""

    ttl: float = 30 * 86400.0

    def claim(self, account_id: str, mid: str, event_id: str) -> Sighting:
        """Record that `event_id` brings `mid`: "new" the first time, "again" for the same event
        once more, "other" when another event brought the message first."""
        key = self._key("seen", account_id, mid)
        if self._redis.set(key, event_id, nx=True, ex=int(self.ttl)):
            return "new"
        first = self._redis.get(key)
        return "again" if first is None or text(first) == event_id else "other"

    def seen(self, account_id: str, mid: str) -> bool:
        """Whether any event brought `mid`."""
        return bool(self._redis.exists(self._key("seen", account_id, mid)))
