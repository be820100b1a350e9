"""Per handler and event: whether it succeeded (deduplication) and how often it failed."""

from __future__ import annotations

import time
from typing import Any

from workers.state.base import DAY, Concern

DONE_TTL = 30 * DAY  # how long "handler X already has event Y" is remembered
# The done mark is written after the handler took the event: if Redis refused it (at `maxmemory`
# with noeviction), the retry would hand the event to the handler a second time. Redis refuses a
# script's memory-growing command only while the script has written nothing yet, so this one
# deletes the attempts first (a write that frees memory) and then may always set the mark. It
# answers the failed attempts that came before, for the event log (a read: no write yet).
_MARK_DONE = """
local earlier = redis.call('HGET', KEYS[2], 'attempts')
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return tonumber(earlier or '0')
"""


class HandlerProgress(Concern):
    """Done marks and failed attempts, per handler and event id."""

    done_ttl: float = DONE_TTL

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._mark_done = self._redis.register_script(_MARK_DONE)

    def mark_done(self, handler: str, event_id: str) -> int:
        """Remember that `handler` succeeded with this event (its failed attempts are forgotten);
        returns how many attempts failed before."""
        keys = [self._key("done", handler, event_id), self._key("attempts", handler, event_id)]
        return int(self._mark_done(keys=keys, args=[int(self.done_ttl)]) or 0)

    def is_done(self, handler: str, event_id: str) -> bool:
        """Whether `handler` already succeeded with this event."""
        return bool(self._redis.exists(self._key("done", handler, event_id)))

    def done_many(self, pairs: list[tuple[str, str]]) -> list[bool]:
        """`is_done` for many (handler, event id) pairs in one round trip."""
        if not pairs:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for handler, event_id in pairs:
            pipe.exists(self._key("done", handler, event_id))
        return [bool(found) for found in pipe.execute()]

    def forget_done(self, handler: str, event_id: str) -> None:
        """Allow an event to be handed to `handler` again (a forced replay)."""
        self._redis.delete(self._key("done", handler, event_id))

    def note_failure(self, handler: str, event_id: str) -> tuple[int, float]:
        """Count a failed attempt; returns (attempts so far, time of the first failure)."""
        key = self._key("attempts", handler, event_id)
        pipe = self._redis.pipeline()
        pipe.hincrby(key, "attempts", 1)
        pipe.hsetnx(key, "first", time.time())
        pipe.hget(key, "first")
        pipe.expire(key, DONE_TTL)
        attempts, _, first, _ = pipe.execute()
        return int(attempts), float(first)

    def attempts(self, handler: str, event_id: str) -> tuple[int, float | None]:
        """(failed attempts so far, time of the first failure or None), without counting one."""
        attempts, first = self._redis.hmget(self._key("attempts", handler, event_id), ["attempts", "first"])
        return int(attempts or 0), float(first) if first else None

    def clear_attempts(self, handler: str, event_id: str) -> None:
        """Forget the failures of an event that has now succeeded or was dead-lettered."""
        self._redis.delete(self._key("attempts", handler, event_id))
