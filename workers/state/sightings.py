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
        return _compare(self._redis.get(key), event_id)

    def claim_many(self, items: list[tuple[str, str, str, str]]) -> list[Sighting]:
        """`claim` for many (account id, mid, event id, source) items in two round trips."""
        if not items:
            return []
        keys = [self._key("seen", account_id, mid) for account_id, mid, _, _ in items]
        pipe = self._redis.pipeline(transaction=False)
        for key, (_, _, event_id, source) in zip(keys, items, strict=True):
            pipe.set(key, f"{source}:{event_id}", nx=True, ex=int(self.ttl))
        created = pipe.execute()
        firsts = self._redis.mget(keys)
        return ["new" if made else _compare(first, event_id)
                for made, first, (_, _, event_id, _) in zip(created, firsts, items, strict=True)]

    def seen(self, account_id: str, mid: str) -> bool:
        """Whether any event brought `mid`."""
        return bool(self._redis.exists(self._key("seen", account_id, mid)))


def _compare(first: bytes | str | None, event_id: str) -> Sighting:
    """Whether the event that brought a message first is `event_id`, else its source."""
    first_source, _, first_id = text(first or "").partition(":")
    if not first_id or first_id == event_id:
        return "again"
    return SOURCES.get(first_source, "again")
