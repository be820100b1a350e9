"""Deliveries a worker could not process (bad data, a bug): reported back to the inbox they came from."""

from __future__ import annotations

import json

from workers.state.base import Concern

BATCH = 100


class DeliveryFailures(Concern):
    """A list per inbox that its relay drains into the inbox rows, and a count for `status`."""

    def record(self, inbox_id: str, delivery_id: int, error: str) -> None:
        """Report that a delivery failed, for the relay of inbox `inbox_id` to mark it."""
        pipe = self._redis.pipeline()
        pipe.rpush(self._key("failures", inbox_id), json.dumps([delivery_id, error]))
        pipe.hincrby(self._key("failure-count"), inbox_id, 1)
        pipe.execute()

    def reported(self, inbox_id: str) -> list[tuple[int, str]]:
        """The oldest failures reported for an inbox and not yet acknowledged."""
        items = self._redis.lrange(self._key("failures", inbox_id), 0, BATCH - 1)
        return [(int(delivery_id), str(error)) for delivery_id, error in map(json.loads, items)]

    def acknowledge(self, inbox_id: str, count: int) -> None:
        """The inbox has marked the first `count` reported failures."""
        self._redis.ltrim(self._key("failures", inbox_id), count, -1)

    def total(self) -> int:
        """How many deliveries failed, over every inbox."""
        return sum(int(n) for n in self._redis.hvals(self._key("failure-count")))


class Intake(Concern):
    """Which deliveries a worker has taken in, per inbox: the relay's end-to-end acknowledgement.

    The broker can lose a message it already handed out (a worker killed between taking it and
    recording it as unacknowledged); the relay publishes again what no worker confirmed in time.
    """

    def confirm(self, inbox_id: str, delivery_id: int) -> None:
        """A worker has routed this delivery's events."""
        pipe = self._redis.pipeline()
        pipe.sadd(self._key("intake", inbox_id), delivery_id)
        pipe.expire(self._key("intake", inbox_id), 2 * 86400)
        pipe.execute()

    def confirmed(self, inbox_id: str, delivery_ids: list[int]) -> list[bool]:
        """For each delivery, whether a worker confirmed it."""
        if not delivery_ids:
            return []
        return [bool(found) for found in self._redis.smismember(self._key("intake", inbox_id), delivery_ids)]

    def forget(self, inbox_id: str, delivery_ids: list[int]) -> None:
        """The inbox has recorded these confirmations."""
        if delivery_ids:
            self._redis.srem(self._key("intake", inbox_id), *delivery_ids)
