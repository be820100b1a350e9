"""Noticing that the shared Redis lost its data (say, restarted without persistence).

Redis holds the queued tasks; if it comes back empty they are gone, though the inbox answered 200
for them. The store's epoch tells: it is set once and survives as long as the data does. When a
relay finds a different epoch than the one it recorded, it publishes its recent deliveries again.
"""

from __future__ import annotations

from workers.inbox.database import Inbox
from workers.state.health import StoreHealth

STATE_KEY = "store_epoch"


class StoreWatch:
    """Compares the store's epoch with the one this inbox last saw."""

    def __init__(self, health: StoreHealth, inbox: Inbox):
        self.health, self.inbox = health, inbox

    def data_lost(self) -> bool:
        """True once after the Redis data was lost since the last look (never on first contact)."""
        current = self.health.epoch()
        known = self.inbox.state(STATE_KEY)
        if known == current:
            return False
        self.inbox.set_state(STATE_KEY, current)
        return known is not None
