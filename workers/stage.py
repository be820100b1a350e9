"""What every stage is handed: the Runtime, one per worker process, built by the composition root
(`workers/runtime/context.py`). Stages type against it and never build one."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from workers.crypto import Codec
from workers.events.log import EventLog
from workers.graph import GraphClient
from workers.handler import LoadedHandler
from workers.scheduler import Scheduler
from workers.settings import Account, Settings
from workers.state import Store

log = logging.getLogger(__name__)
# A task message costs more than delivering a `read` event to a file: the task that queued the
# events delivers them itself, for up to this long.
DELIVER_INLINE_FOR = 2.0


@dataclass(frozen=True)
class Runtime:
    """The collaborators every stage is handed."""

    settings: Settings
    store: Store
    graph: GraphClient
    handlers: dict[str, LoadedHandler]
    scheduler: Scheduler
    codec: Codec = field(default_factory=Codec)
    # Seconds a task may spend delivering the events it has just queued, itself, before it leaves
    # the rest to deliver tasks; 0: a deliver task for every queue (what unit tests observe).
    deliver_inline_for: float = 0.0
    # The Graph client of Instagram Login accounts (graph.instagram.com): the host and the account
    # path (`me`) are all that differ; None: the one client serves every account (unit tests).
    instagram_graph: GraphClient | None = None
    # The event log, written in batches at the end of each task; None: not kept (unit tests).
    journal: EventLog | None = None

    def graph_for(self, account: Account) -> GraphClient:
        """The Graph client on the account's host."""
        return self.instagram_graph if account.instagram_login and self.instagram_graph else self.graph

    def token_for(self, account: Account) -> str:
        """The token the account's calls carry now (see `AccountState.current_token`)."""
        return self.store.accounts.current_token(account)

    def close(self) -> None:
        """Release what this Runtime holds: handlers that have a `close()`, the Graph session.
        A handler whose close fails is logged (by type) and the others are closed all the same."""
        for loaded in self.handlers.values():
            close = getattr(loaded.handler, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as exc:  # a plugin's bug must not stop the reload
                    log.warning("handler=%s close failed: %s", loaded.name, type(exc).__name__)
        for graph in (self.graph, self.instagram_graph):
            if graph is not None:
                graph.close()
        if self.journal is not None:
            try:
                self.journal.close()
            except Exception as exc:  # a log that cannot be written must not stop the reload
                log.warning("event log not closed cleanly: %s", type(exc).__name__)
