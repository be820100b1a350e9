"""The Graph API call budget of each account, shared by every worker process and machine."""

from __future__ import annotations

import redis

from workers.state.base import Concern, Keys

PACING_MARGIN_MS = 60  # absorbs the jitter between taking a call here and its arrival at Meta

# GCRA: one call every `interval` ms; returns 0 when granted, else the ms to wait.
_TAKE_CALL = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local blocked = tonumber(redis.call('PTTL', KEYS[2]))
if blocked > 0 then return blocked end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat > now_ms then return tat - now_ms end
redis.call('SET', KEYS[1], now_ms + tonumber(ARGV[1]), 'PX', tonumber(ARGV[1]) * 2 + 1000)
return 0
"""


class CallBudgets(Concern):
    """Calls spaced 1/rate apart per account, and blocks after throttling."""

    def __init__(self, client: redis.Redis, keys: Keys):
        super().__init__(client, keys)
        self._take_call = client.register_script(_TAKE_CALL)

    def take_call(self, account_id: str, calls_per_second: float) -> float:
        """Take one call from the account's budget: 0 if granted, else seconds to wait."""
        interval_ms = int(1000 / calls_per_second) + PACING_MARGIN_MS
        keys = [self._key("budget", account_id), self._key("blocked", account_id)]
        return int(self._take_call(keys=keys, args=[interval_ms])) / 1000

    def free_now(self, account_id: str) -> bool:
        """Whether a call taken now would be granted (without taking it)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.time()
        pipe.get(self._key("budget", account_id))
        pipe.pttl(self._key("blocked", account_id))
        (seconds, micros), tat, blocked = pipe.execute()
        return blocked <= 0 and int(tat or 0) <= seconds * 1000 + micros // 1000

    def block_calls(self, account_id: str, seconds: float) -> None:
        """Stop all calls for an account for a while (throttled, or usage headers near the limit)."""
        key = self._key("blocked", account_id)
        if seconds > 0 and self._redis.pttl(key) < seconds * 1000:
            self._redis.set(key, "1", px=int(seconds * 1000))

    def blocked_for(self, account_id: str) -> float:
        """Seconds until an account may call again after throttling (0: it may)."""
        return max(int(self._redis.pttl(self._key("blocked", account_id))), 0) / 1000
