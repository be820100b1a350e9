"""How many calls of each handler are in flight, across every worker process and machine."""

from __future__ import annotations

from typing import Any

from workers.state.base import Concern

# A sorted set of leases per handler, scored by when each expires: a lease of a killed process
# frees itself. The holder that asks again (a task redelivered under its id) keeps its lease.
_TAKE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


class HandlerSlots(Concern):
    """Leases on a handler's slots: at most `limit` holders at a time, each for at most `ttl`."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._take = self._redis.register_script(_TAKE)

    def take(self, handler: str, holder: str, *, limit: int, ttl: float) -> bool:
        """Take (or keep) a slot of `handler` for `holder`; False when all `limit` are held."""
        args: list[str | int] = [holder, limit, int(ttl * 1000)]
        return bool(self._take(keys=[self._key("slots", handler)], args=args))

    def give_back(self, handler: str, holder: str) -> None:
        """Free the slot `holder` took."""
        self._redis.zrem(self._key("slots", handler), holder)

    def in_use(self, handler: str) -> int:
        """How many leases of `handler` are held now (expired ones not counted)."""
        seconds, micros = self._redis.time()
        now_ms = seconds * 1000 + micros // 1000
        return int(self._redis.zcount(self._key("slots", handler), now_ms, "+inf"))
