"""Ordered work queues (hydration per account, delivery per handler and conversation)."""

from __future__ import annotations

from workers.state.base import DAY, Concern, members

ITEM_TTL = 30 * DAY  # a queue nobody drains for this long is forgotten (queue.retention when set)


class WorkQueues(Concern):
    """Items (JSON objects with an id) in sorted sets, lowest score first; bodies in a hash."""

    item_ttl: float = ITEM_TTL

    def enqueue(self, queue: str, item_id: str, body: dict, *, score: float) -> None:
        """Add or replace an item, ordered by `score`."""
        self.enqueue_many([(queue, item_id, body, score)])

    def enqueue_many(self, items: list[tuple[str, str, dict, float]]) -> None:
        """Add or replace (queue, item id, body, score) items, in one round trip."""
        if not items:
            return
        pipe = self._redis.pipeline()
        for queue, item_id, body, score in items:
            pipe.hset(self._key("qi", queue), item_id, self._dump(body))
            pipe.zadd(self._key("q", queue), {item_id: score})
        for queue in {item[0] for item in items}:
            pipe.expire(self._key("qi", queue), int(self.item_ttl))
            pipe.expire(self._key("q", queue), int(self.item_ttl))
            pipe.sadd(self._key("queues"), queue)
        pipe.execute()

    def update(self, queue: str, item_id: str, body: dict) -> None:
        """Replace a queued item's body, keeping its place."""
        self._redis.hset(self._key("qi", queue), item_id, self._dump(body))

    def peek(self, queue: str, count: int = 1000, *, ready_by: float | None = None) -> list[dict]:
        """The lowest-scored items (only those scored up to `ready_by`), left queued."""
        top = "+inf" if ready_by is None else ready_by
        ids = members(self._redis.zrangebyscore(self._key("q", queue), "-inf", top, start=0, num=count))
        if not ids:
            return []
        bodies = self._redis.hmget(self._key("qi", queue), ids)
        return [self._load(body, what=f"queue {queue}") for body in bodies if body]

    def defer(self, queue: str, item_ids: list[str], until: float) -> None:
        """Score queued items `until` so that `peek(ready_by=...)` skips them until then."""
        if item_ids:
            self._redis.zadd(self._key("q", queue), dict.fromkeys(item_ids, until), xx=True)

    def next_ready_at(self, queue: str) -> float | None:
        """The lowest score in a queue, or None when it is empty."""
        lowest = self._redis.zrange(self._key("q", queue), 0, 0, withscores=True)
        return float(lowest[0][1]) if lowest else None

    def dequeue(self, queue: str, *item_ids: str) -> None:
        """Remove items once they moved on; their bodies go with them."""
        if item_ids:
            pipe = self._redis.pipeline()
            pipe.zrem(self._key("q", queue), *item_ids)
            pipe.hdel(self._key("qi", queue), *item_ids)
            pipe.execute()

    def length(self, queue: str) -> int:
        """How many items wait in a queue."""
        return int(self._redis.zcard(self._key("q", queue)))

    def reseal(self) -> int:
        """Seal every queued body again under the first key (rotate-keys); returns how many."""
        count = 0
        for queue in self.names():
            bodies = self._redis.hgetall(self._key("qi", queue))
            for item_id, body in bodies.items():
                self._redis.hset(self._key("qi", queue), item_id,
                                 self._resealed(body, what=f"queue {queue}"))
            count += len(bodies)
        return count

    def names(self) -> list[str]:
        """Every queue that holds items (empty ones are forgotten here)."""
        names = sorted(members(self._redis.smembers(self._key("queues"))))
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.zcard(self._key("q", name))
        lengths = dict(zip(names, pipe.execute() if names else [], strict=True))
        empty = [name for name, length in lengths.items() if not length]
        if empty:
            self._redis.srem(self._key("queues"), *empty)
        return [name for name in names if lengths[name]]
