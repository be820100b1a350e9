"""State that workers share across processes and machines, on one Redis, split by concern."""

from __future__ import annotations

from workers.crypto import Codec
from workers.state.accounts import AccountState
from workers.state.base import Keys, connect
from workers.state.breakers import HandlerBreakers
from workers.state.budgets import CallBudgets
from workers.state.dead_letters import DeadLetterStore
from workers.state.failures import DeliveryFailures, Intake
from workers.state.flags import Flags
from workers.state.handler_progress import HandlerProgress
from workers.state.handler_slots import HandlerSlots
from workers.state.health import StoreHealth
from workers.state.memory import StoreMemory
from workers.state.queues import WorkQueues
from workers.state.sightings import Sightings
from workers.state.sync_jobs import SyncJobs

__all__ = ["Store"]


class Store:
    """One Redis seen through its concerns; no caller touches the client itself."""

    def __init__(self, url: str, *, prefix: str = "inbox-relay", codec: Codec | None = None,
                 dedup_days: float = 30.0, retention: float | None = None):
        client, keys = connect(url), Keys(prefix)
        self.queues = WorkQueues(client, keys, codec)
        if retention is not None:
            self.queues.item_ttl = retention
        self.flags = Flags(client, keys)
        self.progress = HandlerProgress(client, keys)
        self.progress.done_ttl = dedup_days * 86400
        self.slots = HandlerSlots(client, keys)
        self.breakers = HandlerBreakers(client, keys)
        self.budgets = CallBudgets(client, keys)
        self.accounts = AccountState(client, keys, codec)
        self.dead_letters = DeadLetterStore(client, keys, codec)
        self.dead_letters.keep_for = retention
        self.health = StoreHealth(client, keys)
        self.memory = StoreMemory(client, keys)
        self.failures = DeliveryFailures(client, keys)
        self.intake = Intake(client, keys)
        self.sightings = Sightings(client, keys)
        self.sightings.ttl = dedup_days * 86400
        self.sync_jobs = SyncJobs(client, keys, codec)

    def open_some(self, limit: int = 20) -> int:
        """Open a few sealed values of each kind (the newest dead letters, the head of some queues):
        do the configured keys fit what is stored? How many opened; DecryptError if one does not."""
        opened = len(self.dead_letters.all(newest=limit))
        for name in self.queues.names()[:limit]:
            opened += len(self.queues.peek(name, 1))
        return opened

    def reseal(self) -> int:
        """Seal every stored value that may hold text again under the first key; returns how many."""
        return (self.queues.reseal() + self.dead_letters.reseal() + self.accounts.reseal()
                + self.sync_jobs.reseal())
