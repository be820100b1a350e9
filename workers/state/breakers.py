"""The circuit breaker of each handler: failed attempts in a row, pauses, slow calls."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from workers.state.base import DAY, Concern

# Counts a failed attempt; opens the breaker (the paused key, with a time to live) at the
# threshold, or at once when the probe after a pause failed. Returns {pause number, pause ms}
# to the one caller that opened it, {0, failures} otherwise. Atomic: one log line per pause.
_FAILED = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, 0} end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSETNX', KEYS[1], 'since', ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
local pauses = tonumber(redis.call('HGET', KEYS[1], 'pauses') or '0')
local threshold = tonumber(ARGV[2])
if threshold == 0 or (failures < threshold and pauses == 0) then return {0, failures} end
local pause = math.min(tonumber(ARGV[3]) * 2 ^ pauses, tonumber(ARGV[4]))
redis.call('SET', KEYS[2], ARGV[1], 'PX', math.floor(pause))
redis.call('HSET', KEYS[1], 'pauses', pauses + 1, 'failures', 0)
return {pauses + 1, math.floor(pause)}
"""


@dataclass(frozen=True)
class BreakerState:
    """What the breaker of one handler says now."""

    failures: int = 0          # failed attempts in a row since the last pause or success
    pauses: int = 0            # pauses in a row (the probe after each one failed)
    since: float | None = None  # the first failure of this run of failures
    paused_for: float = 0.0    # seconds left in the current pause (0: not paused)
    slow: bool = False         # a recent call took long
    fast_for: float = 0.0      # seconds its latest fast success keeps counting (0: none lately)

    @property
    def inline_ok(self) -> bool:
        """Whether a task with other work to do may call it: fast lately, not failing."""
        return self.fast_for > 0 and not (self.failures or self.pauses or self.paused_for or self.slow)


class HandlerBreakers(Concern):
    """Per handler: failures in a row open a pause; a success closes it."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._failed = self._redis.register_script(_FAILED)

    def state(self, handler: str) -> BreakerState:
        """The breaker of `handler` (one round trip)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(self._key("breaker", handler))
        pipe.pttl(self._key("paused-handler", handler))
        pipe.exists(self._key("slow-handler", handler))
        pipe.pttl(self._key("fast-handler", handler))
        counts, paused_ms, slow, fast_ms = pipe.execute()
        return BreakerState(failures=int(counts.get("failures", 0)), pauses=int(counts.get("pauses", 0)),
                            since=float(counts["since"]) if "since" in counts else None,
                            paused_for=max(int(paused_ms), 0) / 1000, slow=bool(slow),
                            fast_for=max(int(fast_ms), 0) / 1000)

    def failed(self, handler: str, *, threshold: int, pause: float,
               max_pause: float) -> tuple[int, float] | None:
        """Count a failed attempt; (pause number, seconds) if this one opened the breaker, else None."""
        keys = [self._key("breaker", handler), self._key("paused-handler", handler)]
        opened, value = self._failed(keys=keys, args=[time.time(), threshold, int(pause * 1000),
                                                      int(max_pause * 1000), DAY])
        return (int(opened), int(value) / 1000) if int(opened) else None

    def succeeded(self, handler: str) -> bool:
        """Close the breaker after a success; whether it was open or counting failures."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.delete(self._key("breaker", handler))
        pipe.delete(self._key("paused-handler", handler))
        return any(pipe.execute())

    def note_slow(self, handler: str, *, seconds: float) -> None:
        """A call took long: keep `handler` out of inline delivery for `seconds`."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self._key("slow-handler", handler), "1", px=int(seconds * 1000))
        pipe.delete(self._key("fast-handler", handler))
        pipe.execute()

    def note_fast(self, handler: str, *, seconds: float) -> None:
        """A call was quick: `handler` may be called inline for `seconds`."""
        self._redis.set(self._key("fast-handler", handler), "1", px=int(seconds * 1000))
