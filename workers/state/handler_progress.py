"""Per handler and event: whether it succeeded (deduplication) and how often it failed."""

from __future__ import annotations

import time

from workers.state.base import DAY, Concern

DONE_TTL = 30 * DAY  # how long "handler X already has event Y" is remembered


class HandlerProgress(Concern):
    """Done marks and failed attempts, per handler and event id."""

    done_ttl: float = DONE_TTL

    def mark_done(self, handler: str, event_id: str) -> None:
        """Remember that `handler` succeeded with this event (its failed attempts are forgotten)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self._key("done", handler, event_id), "1", ex=int(self.done_ttl))
        pipe.delete(self._key("attempts", handler, event_id))
        pipe.execute()

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
