"""State workers share across processes and machines, on Redis: one small interface."""

from __future__ import annotations

import json
import time

import redis

DAY = 86400
DONE_TTL = 30 * DAY        # how long "handler X already has event Y" is remembered
EVENT_TTL = 30 * DAY       # an event body waiting for hydration or delivery
CONVERSATION_TTL = 30 * DAY
PACING_MARGIN_MS = 60

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


class Store:
    """Dedup marks, caches, rate budgets, pending work, pauses and dead letters, on one Redis."""

    def __init__(self, url: str, *, prefix: str = "inbox-relay"):
        self.redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5,
                                          health_check_interval=30, decode_responses=True)
        self.prefix = prefix
        self._take_call = self.redis.register_script(_TAKE_CALL)

    def key(self, *parts: str) -> str:
        """A namespaced Redis key."""
        return ":".join((self.prefix, *parts))

    # -- events and dedup ---------------------------------------------------------------------
    def save_event(self, event: dict) -> None:
        """Keep an event's record until every handler has it."""
        self.redis.set(self.key("event", event["id"]), json.dumps(event), ex=EVENT_TTL)

    def load_event(self, event_id: str) -> dict | None:
        """An event record saved earlier, or None."""
        data = self.redis.get(self.key("event", event_id))
        return json.loads(data) if data else None

    def mark_done(self, handler: str, event_id: str) -> None:
        """Remember that `handler` succeeded with this event."""
        self.redis.set(self.key("done", handler, event_id), "1", ex=DONE_TTL)

    def is_done(self, handler: str, event_id: str) -> bool:
        """Whether `handler` already succeeded with this event."""
        return bool(self.redis.exists(self.key("done", handler, event_id)))

    def forget_done(self, handler: str, event_id: str) -> None:
        """Allow an event to be handed to `handler` again (a forced replay)."""
        self.redis.delete(self.key("done", handler, event_id))

    # -- scheduling flags: at most one task drains a queue at a time -----------------------------
    def claim(self, name: str, ttl: float) -> bool:
        """Take the flag `name` unless someone holds it."""
        return bool(self.redis.set(self.key("flag", name), "1", nx=True, px=int(ttl * 1000)))

    def hold(self, name: str, ttl: float) -> None:
        """Keep holding the flag `name` for another `ttl` seconds (a task that retries later)."""
        self.redis.set(self.key("flag", name), "1", px=int(ttl * 1000))

    def release(self, name: str) -> None:
        """Give the flag `name` back."""
        self.redis.delete(self.key("flag", name))

    def is_claimed(self, name: str) -> bool:
        """Whether some task holds the flag `name`."""
        return bool(self.redis.exists(self.key("flag", name)))

    # -- ordered queues of event ids (hydration per account, delivery per handler and thread) ----
    def enqueue(self, queue: str, event: dict, *, score: float | None = None) -> None:
        """Add an event to a queue, ordered by `score` (default: the event's timestamp)."""
        self.save_event(event)
        score = score if score is not None else event.get("timestamp") or int(time.time() * 1000)
        self.redis.zadd(self.key("q", queue), {event["id"]: score})
        self.redis.sadd(self.key("queues"), queue)

    def peek(self, queue: str, count: int = 1000, *, ready_by: float | None = None) -> list[dict]:
        """The lowest-scored events of a queue (only those scored up to `ready_by`), kept queued."""
        top = "+inf" if ready_by is None else ready_by
        ids = self.redis.zrangebyscore(self.key("q", queue), "-inf", top, start=0, num=count)
        events = [self.load_event(event_id) for event_id in ids]
        return [event for event in events if event is not None]

    def defer(self, queue: str, event_ids: list[str], until: float) -> None:
        """Score queued events `until` (ms) so that `peek(ready_by=...)` skips them until then."""
        if event_ids:
            self.redis.zadd(self.key("q", queue), {event_id: until for event_id in event_ids}, xx=True)

    def next_ready_at(self, queue: str) -> float | None:
        """The lowest score in a queue, or None when it is empty."""
        lowest = self.redis.zrange(self.key("q", queue), 0, 0, withscores=True)
        return lowest[0][1] if lowest else None

    def dequeue(self, queue: str, *event_ids: str) -> None:
        """Remove events from a queue once they moved on."""
        if event_ids:
            self.redis.zrem(self.key("q", queue), *event_ids)

    def queue_length(self, queue: str) -> int:
        """How many events wait in a queue."""
        return self.redis.zcard(self.key("q", queue))

    def queues(self) -> list[str]:
        """Every queue that may hold events (empty ones are pruned here)."""
        names = sorted(self.redis.smembers(self.key("queues")))
        for name in names:
            if not self.queue_length(name):
                self.redis.srem(self.key("queues"), name)
        return [name for name in names if self.queue_length(name)]

    # -- handler attempts --------------------------------------------------------------------
    def note_failure(self, handler: str, event_id: str) -> tuple[int, float]:
        """Count a failed attempt; returns (attempts so far, time of the first failure)."""
        key = self.key("attempts", handler, event_id)
        pipe = self.redis.pipeline()
        pipe.hincrby(key, "attempts", 1)
        pipe.hsetnx(key, "first", time.time())
        pipe.hget(key, "first")
        pipe.expire(key, DONE_TTL)
        attempts, _, first, _ = pipe.execute()
        return int(attempts), float(first)

    def clear_attempts(self, handler: str, event_id: str) -> None:
        """Forget the failures of an event that has now succeeded or was dead-lettered."""
        self.redis.delete(self.key("attempts", handler, event_id))

    # -- Graph API: conversation cache, call budget, paused accounts ---------------------------
    def conversation_id(self, account_id: str, customer_id: str) -> str | None:
        """The cached conversation id of an account and a customer."""
        return self.redis.get(self.key("conversation", account_id, customer_id))

    def remember_conversation(self, account_id: str, customer_id: str, conversation_id: str) -> None:
        """Cache a conversation id."""
        self.redis.set(self.key("conversation", account_id, customer_id), conversation_id,
                       ex=CONVERSATION_TTL)

    def save_progress(self, key: str, progress: dict, *, ttl: float = 120.0) -> None:
        """Where a paged listing stopped, to go on from there in the next task."""
        self.redis.set(self.key("progress", key), json.dumps(progress), px=int(ttl * 1000))

    def load_progress(self, key: str) -> dict | None:
        """A listing's saved progress, or None."""
        data = self.redis.get(self.key("progress", key))
        return json.loads(data) if data else None

    def clear_progress(self, key: str) -> None:
        """Forget a listing's progress."""
        self.redis.delete(self.key("progress", key))

    def take_call(self, account_id: str, calls_per_second: float) -> float:
        """Take one Graph call from the account's shared budget: 0 if granted, else seconds to wait."""
        # The margin absorbs the jitter between taking a call here and its arrival at Meta.
        interval_ms = int(1000 / calls_per_second) + PACING_MARGIN_MS
        keys = [self.key("budget", account_id), self.key("blocked", account_id)]
        return int(self._take_call(keys=keys, args=[interval_ms])) / 1000

    def block_calls(self, account_id: str, seconds: float) -> None:
        """Stop all calls for an account for a while (throttled, or usage headers near the limit)."""
        key = self.key("blocked", account_id)
        if seconds > 0 and self.redis.pttl(key) < seconds * 1000:
            self.redis.set(key, "1", px=int(seconds * 1000))

    def blocked_for(self, account_id: str) -> float:
        """Seconds until an account may call again after throttling (0: it may)."""
        return max(self.redis.pttl(self.key("blocked", account_id)), 0) / 1000

    def pause_account(self, account_id: str, token_fingerprint: str, reason: str) -> None:
        """Record that an account's token is invalid; hydration waits until it changes."""
        self.redis.hset(self.key("paused", account_id),
                        mapping={"token": token_fingerprint, "reason": reason, "since": time.time()})

    def paused(self, account_id: str) -> dict | None:
        """Why and since when an account is paused, or None."""
        return self.redis.hgetall(self.key("paused", account_id)) or None

    def resume_account(self, account_id: str) -> None:
        """Lift a pause."""
        self.redis.delete(self.key("paused", account_id))

    # -- dead letters -------------------------------------------------------------------------
    def add_dead_letter(self, letter: dict) -> None:
        """Keep an event a handler could not take, with the handler, error, attempts and times."""
        letter_id = f"{letter['handler']}:{letter['event']['id']}"
        self.redis.set(self.key("dead", letter_id), json.dumps(letter))
        self.redis.zadd(self.key("dead-index"), {letter_id: letter["failed_at"]})

    def dead_letters(self) -> list[dict]:
        """Every dead letter, oldest first."""
        ids = self.redis.zrange(self.key("dead-index"), 0, -1)
        letters = [self.redis.get(self.key("dead", letter_id)) for letter_id in ids]
        return [json.loads(letter) for letter in letters if letter]

    def remove_dead_letter(self, handler: str, event_id: str) -> None:
        """Drop one dead letter."""
        letter_id = f"{handler}:{event_id}"
        self.redis.delete(self.key("dead", letter_id))
        self.redis.zrem(self.key("dead-index"), letter_id)
