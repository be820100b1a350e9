"""Whether the store answers, and whether it still holds the data it had (the epoch)."""

from __future__ import annotations

import uuid

from workers.state.base import Concern


class StoreHealth(Concern):
    """A ping, and an epoch that is set once and lives exactly as long as the Redis data does."""

    def ping(self) -> bool:
        """True when Redis answers; raises redis.RedisError when it does not."""
        return bool(self._redis.ping())

    def epoch(self) -> str:
        """The data's epoch: a new value means Redis lost everything since it was last read."""
        self._redis.set(self._key("epoch"), uuid.uuid4().hex, nx=True)
        return str(self._redis.get(self._key("epoch")))

    def memory(self) -> tuple[int, int]:
        """(bytes used, maxmemory); maxmemory is 0 when Redis has no limit."""
        info = self._redis.info("memory")
        return int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
