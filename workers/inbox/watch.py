"""What the relay learns from the store: that Redis lost its data, and which deliveries failed.

Redis holds the queued tasks; if it comes back empty they are gone, though the inbox answered 200
for them. The store's epoch tells: it is set once and survives as long as the data does. When a
relay finds a different epoch than the one it recorded, it publishes its recent deliveries again.
Workers may run on other machines than the inbox: they report failed deliveries to the store, and
the relay marks them in its inbox, where `deliveries list --failed` shows them.
"""

from __future__ import annotations

import logging
import socket
import uuid
from pathlib import Path

from workers.inbox.database import Inbox
from workers.state import Store

EPOCH_STATE = "store_epoch"
INBOX_ID_STATE = "inbox_id"
log = logging.getLogger(__name__)


def node_name(data_dir: Path) -> str:
    """Who keeps an inbox, as the store knows it: this host and the data_dir."""
    return f"{socket.gethostname()}:{data_dir.resolve()}"


def inbox_id(inbox: Inbox) -> str:
    """This inbox's name in the store, made once and kept in the inbox itself."""
    known = inbox.state(INBOX_ID_STATE)
    if known is None:
        known = uuid.uuid4().hex
        inbox.set_state(INBOX_ID_STATE, known)
    return known


class StoreWatch:
    """Compares the store's epoch with the one this inbox last saw; collects failure reports."""

    def __init__(self, store: Store, inbox: Inbox):
        self.store, self.inbox = store, inbox
        self.inbox_id = inbox_id(inbox)
        self._remembered: int | None = None  # the highest delivery id the store has from us

    def remember(self) -> None:
        """Tell the store this node's inbox and the highest delivery id it holds (when it grew).

        Start-up compares them with the inbox it finds, so that an emptied inbox or a lost WAL
        stops it. Written here, by the relay, so that acknowledging a delivery costs no round trip.
        """
        high = self.inbox.high_id()
        if self._remembered is None:
            node = node_name(self.inbox.path.parent)
            had = self.store.memory.claim_node(node, self.inbox_id)
            if had != self.inbox_id:
                log.error("relay: this node's inbox was %s in the store, not %s; restart to see why",
                          had, self.inbox_id)
        if self._remembered is None or high > self._remembered:
            self.store.memory.raise_high_water(self.inbox_id, high)
            self._remembered = high

    def data_lost(self) -> bool:
        """True once after the Redis data was lost since the last look (never on first contact)."""
        current = self.store.health.epoch()
        known = self.inbox.state(EPOCH_STATE)
        if known == current:
            return False
        self.inbox.set_state(EPOCH_STATE, current)
        return known is not None

    def unconfirmed(self, *, now: float, confirm_within: float) -> list[int]:
        """Record what workers confirmed; return the deliveries still unconfirmed after
        `confirm_within` seconds (within the last hour), which the broker must have lost."""
        ids = self.inbox.unconfirmed(published_before=now - confirm_within,
                                     published_after=now - confirm_within - 3600)
        confirmed = self.store.intake.confirmed(self.inbox_id, ids)
        done = [i for i, ok in zip(ids, confirmed, strict=True) if ok]
        self.inbox.mark_confirmed(done)
        self.store.intake.forget(self.inbox_id, done)
        return [i for i, ok in zip(ids, confirmed, strict=True) if not ok]

    def collect_failures(self) -> int:
        """Mark the deliveries workers reported as failed; returns how many."""
        reported = self.store.failures.reported(self.inbox_id)
        if reported:
            self.inbox.mark_failed(reported)
            self.store.failures.acknowledge(self.inbox_id, len(reported))
        return len(reported)
