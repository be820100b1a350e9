"""What the store remembers of the data it was given, so that data lost elsewhere is noticed.

Per inbox, the highest delivery id its relay has seen (an inbox whose rows end below it lost
some: a deleted -wal file, a restored old copy); per node (host and data_dir), the inbox it had (an
inbox that came back empty is a new one); and whether sealed data was ever stored (a key file that
vanished must be restored, not replaced by a new key that opens nothing).
"""

from __future__ import annotations

from workers.state.base import Concern

# Raise the mark, never lower it: several relays (web workers without gunicorn's master) write it.
_RAISE = """
local known = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > known then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0
"""


class StoreMemory(Concern):
    """High-water marks of inbox ids, each node's inbox, and the "sealed data was stored" mark."""

    def high_water(self, inbox_id: str) -> int:
        """The highest delivery id recorded for this inbox (0 if none)."""
        return int(self._redis.hget(self._key("inbox-high-water"), inbox_id) or 0)

    def raise_high_water(self, inbox_id: str, delivery_id: int) -> None:
        """The inbox holds deliveries up to `delivery_id`."""
        self._redis.eval(_RAISE, 1, self._key("inbox-high-water"), inbox_id, str(delivery_id))

    def inbox_of(self, node: str) -> str | None:
        """The id of the inbox this node had, if it ever ran a relay."""
        found = self._redis.hget(self._key("node-inbox"), node)
        return str(found) if found else None

    def claim_node(self, node: str, inbox_id: str) -> str:
        """Record `inbox_id` as this node's inbox unless it had one; returns the one it has."""
        self._redis.hsetnx(self._key("node-inbox"), node, inbox_id)
        return str(self._redis.hget(self._key("node-inbox"), node))

    def set_inbox_of(self, node: str, inbox_id: str) -> None:
        """This node's inbox is `inbox_id` from now on."""
        self._redis.hset(self._key("node-inbox"), node, inbox_id)

    def sealed(self) -> bool:
        """Whether data sealed with an encryption key was ever stored here."""
        return bool(self._redis.exists(self._key("sealed")))

    def mark_sealed(self) -> None:
        """Sealed data is (or may be) stored here from now on."""
        self._redis.set(self._key("sealed"), "1")
