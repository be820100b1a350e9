"""Noticing that the shared Redis lost its data (say, restarted without persistence).

Redis holds the queued tasks; if it comes back empty they are gone, though the inbox answered 200
for them. An epoch key tells: it is set once and survives as long as the data does. When a relay
finds a different epoch than the one it recorded, it publishes its recent deliveries again.
"""

from __future__ import annotations

import uuid

import redis

from webhook_app.inbox import Inbox

EPOCH_KEY = "inbox-relay:epoch"
STATE_KEY = "store_epoch"


class StoreWatch:
    """Compares the Redis epoch with the one this inbox last saw."""

    def __init__(self, client: redis.Redis, inbox: Inbox):
        self.client, self.inbox = client, inbox

    def data_lost(self) -> bool:
        """True once after the Redis data was lost since the last look (never on first contact)."""
        current = self._epoch()
        known = self.inbox.state(STATE_KEY)
        if known == current:
            return False
        self.inbox.set_state(STATE_KEY, current)
        return known is not None

    def _epoch(self) -> str:
        self.client.set(EPOCH_KEY, uuid.uuid4().hex, nx=True)
        epoch = self.client.get(EPOCH_KEY)
        return epoch.decode() if isinstance(epoch, bytes) else str(epoch)
