"""Scheduling flags: at most one task drains a queue at a time."""

from __future__ import annotations

from typing import Any

from workers.state.base import Concern

_CLAIM_MANY = """
local taken = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if not holder or holder == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    taken[i] = 1
  else
    taken[i] = 0
  end
end
return taken
"""


class Flags(Concern):
    """Named flags with a time to live, taken and given back by drain tasks."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._claim_many = self._redis.register_script(_CLAIM_MANY)

    def claim(self, name: str, ttl: float) -> bool:
        """Take the flag `name` unless someone holds it."""
        return bool(self._redis.set(self._key("flag", name), "1", nx=True, px=int(ttl * 1000)))

    def claim_many(self, names: list[str], ttl: float, owner: str) -> list[bool]:
        """`claim` for many flags in one round trip, for `owner`; whether each is now held by it.

        A flag `owner` already holds counts as taken: a task the broker handed out again (its worker
        was killed) takes back the flags it held, under the same task id.
        """
        if not names:
            return []
        keys = [self._key("flag", name) for name in names]
        return [bool(taken) for taken in self._claim_many(keys=keys, args=[owner, int(ttl * 1000)])]

    def hold(self, name: str, ttl: float) -> None:
        """Keep holding the flag `name` for another `ttl` seconds (a task that retries later)."""
        self._redis.set(self._key("flag", name), "1", px=int(ttl * 1000))

    def release(self, name: str) -> None:
        """Give the flag `name` back."""
        self._redis.delete(self._key("flag", name))

    def held_many(self, names: list[str]) -> list[bool]:
        """`is_claimed` for many flags, in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.exists(self._key("flag", name))
        return [bool(held) for held in pipe.execute()] if names else []

    def is_claimed(self, name: str) -> bool:
        """Whether some task holds the flag `name`."""
        return bool(self._redis.exists(self._key("flag", name)))
