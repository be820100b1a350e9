"""Dead letters: events a handler gave up on, kept until replayed, purged or `retention` old."""

from __future__ import annotations

import time

from workers.records import DeadLetter
from workers.state.base import Concern, members


class DeadLetterStore(Concern):
    """Letters by handler and event id, indexed by when they failed."""

    keep_for: float | None = None  # seconds; older letters go when a new one comes (queue.retention)

    def add(self, letter: DeadLetter) -> None:
        """Keep a letter (replacing an earlier one for the same handler and event)."""
        pipe = self._redis.pipeline()
        pipe.set(self._key("dead", letter.key), self._dump(letter.to_dict()))
        pipe.zadd(self._key("dead-index"), {letter.key: letter.failed_at})
        pipe.execute()
        if self.keep_for is not None:
            self.prune(older_than=time.time() - self.keep_for)

    def prune(self, *, older_than: float) -> int:
        """Drop the letters that failed before `older_than`, so that a handler failing for
        weeks cannot fill Redis by itself; returns how many went."""
        index = self._key("dead-index")
        stale = members(self._redis.zrangebyscore(index, "-inf", f"({older_than}"))
        if stale:
            pipe = self._redis.pipeline()
            pipe.delete(*(self._key("dead", key) for key in stale))
            pipe.zrem(index, *stale)
            pipe.execute()
        return len(stale)

    def all(self, *, newest: int | None = None) -> list[DeadLetter]:
        """Every dead letter (or the `newest` few), oldest failure first."""
        start = -newest if newest else 0
        keys = members(self._redis.zrange(self._key("dead-index"), start, -1))
        if not keys:
            return []
        bodies = self._redis.mget([self._key("dead", key) for key in keys])
        return [DeadLetter.from_dict(self._load(body, what="a dead letter")) for body in bodies if body]

    def reseal(self) -> int:
        """Seal every dead letter again under the first key (rotate-keys); returns how many."""
        keys = members(self._redis.zrange(self._key("dead-index"), 0, -1))
        for key in keys:
            stored = self._redis.get(self._key("dead", key))
            if stored:
                self._redis.set(self._key("dead", key), self._resealed(stored, what="a dead letter"))
        return len(keys)

    def count(self) -> int:
        """How many dead letters there are."""
        return int(self._redis.zcard(self._key("dead-index")))

    def remove(self, letter: DeadLetter) -> None:
        """Drop one dead letter."""
        pipe = self._redis.pipeline()
        pipe.delete(self._key("dead", letter.key))
        pipe.zrem(self._key("dead-index"), letter.key)
        pipe.execute()
