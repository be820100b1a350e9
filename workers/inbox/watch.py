"""What the relay learns from the store: that Redis lost its data, and which deliveries failed.

Redis holds the queued tasks; if it comes back empty they are gone, though the inbox answered 200
for them. The store's epoch tells: it is set once and survives as long as the data does. When a
relay finds a different epoch than the one it recorded, it publishes its recent deliveries again.
Workers may run on other machines than the inbox: they report failed deliveries to the store, and
the relay marks them in its inbox, where `deliveries list --failed` shows them.
"""

from __future__ import annotations

import uuid

from workers.inbox.database import Inbox
from workers.state import Store

EPOCH_STATE = "store_epoch"
INBOX_ID_STATE = "inbox_id"


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
