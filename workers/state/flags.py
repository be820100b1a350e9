"""Scheduling flags: at most one task drains a queue at a time."""

from __future__ import annotations

from workers.state.base import Concern


class Flags(Concern):
    """Named flags with a time to live, taken and given back by drain tasks."""

    def claim(self, name: str, ttl: float) -> bool:
        """Take the flag `name` unless someone holds it."""
        return bool(self._redis.set(self._key("flag", name), "1", nx=True, px=int(ttl * 1000)))

    def claim_many(self, names: list[str], ttl: float) -> list[bool]:
        """`claim` for many flags in one round trip; whether each was taken."""
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.set(self._key("flag", name), "1", nx=True, px=int(ttl * 1000))
        return [bool(taken) for taken in pipe.execute()] if names else []

    def hold(self, name: str, ttl: float) -> None:
        """Keep holding the flag `name` for another `ttl` seconds (a task that retries later)."""
        self._redis.set(self._key("flag", name), "1", px=int(ttl * 1000))

    def release(self, name: str) -> None:
        """Give the flag `name` back."""
        self._redis.delete(self._key("flag", name))

    def is_claimed(self, name: str) -> bool:
        """Whether some task holds the flag `name`."""
        return bool(self._redis.exists(self._key("flag", name)))
