"""State that workers share across processes and machines, on one Redis, split by concern."""

from __future__ import annotations

from workers.state.accounts import AccountState
from workers.state.base import Keys, connect
from workers.state.budgets import CallBudgets
from workers.state.dead_letters import DeadLetterStore
from workers.state.failures import DeliveryFailures
from workers.state.flags import Flags
from workers.state.handler_progress import HandlerProgress
from workers.state.health import StoreHealth
from workers.state.queues import WorkQueues

__all__ = ["Store"]


class Store:
    """One Redis seen through its concerns; no caller touches the client itself."""

    def __init__(self, url: str, *, prefix: str = "inbox-relay"):
        client, keys = connect(url), Keys(prefix)
        self.queues = WorkQueues(client, keys)
        self.flags = Flags(client, keys)
        self.progress = HandlerProgress(client, keys)
        self.budgets = CallBudgets(client, keys)
        self.accounts = AccountState(client, keys)
        self.dead_letters = DeadLetterStore(client, keys)
        self.health = StoreHealth(client, keys)
        self.failures = DeliveryFailures(client, keys)
