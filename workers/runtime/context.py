"""What a worker process builds once from its settings: store, Graph client, handlers, scheduler."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from workers.crypto import Codec
from workers.delivery.plugins import LoadedHandler, load_handlers
from workers.hydration.graph import GraphClient
from workers.runtime.config import load_settings
from workers.runtime.settings import Settings
from workers.scheduler import Scheduler, SendTask
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
        if self.graph is not None:
            self.graph.close()


def build_runtime(settings: Settings, send_task: SendTask) -> Runtime:
    """Build the collaborators of one process; `send_task` starts Celery tasks by name."""
    meta = settings.meta
    graph = GraphClient(meta.graph_url, meta.graph_version,
                        app_secret=meta.app_secrets[0] if meta.appsecret_proof else None)
    codec = Codec(settings.encryption_keys)
    store = Store(settings.redis_store_url, codec=codec, dedup_days=settings.queue.dedup_days,
                  retention=settings.queue.retention)
    scheduler = Scheduler(store.flags, store.queues, send_task,
                          visibility_timeout=settings.queue.visibility_timeout,
                          coalesce_seconds=settings.hydration.coalesce_seconds)
    return Runtime(settings, store, graph, load_handlers(settings), scheduler, codec,
                   deliver_inline_for=DELIVER_INLINE_FOR)


class RuntimeCache:
    """One Runtime per process, rebuilt when the configuration file changes (a new token resumes)."""

    def __init__(self, send_task: SendTask):
        self.send_task = send_task
        self._runtime: Runtime | None = None
        self._mtime: float | None = None

    def get(self) -> Runtime:
        """The current Runtime, built on first use."""
        current = self._runtime
        if current is None:
            return self._build(load_settings())
        if current.settings.source and _mtime(current.settings.source) != self._mtime:
            log.info("configuration changed; reloading")
            return self._build(load_settings(current.settings.source))
        return current

    def _build(self, settings: Settings) -> Runtime:
        replaced = self._runtime
        self._mtime = _mtime(settings.source)
        self._runtime = build_runtime(settings, self.send_task)
        if replaced is not None:  # closed once its successor exists: a failed build keeps it
            replaced.close()
        return self._runtime


def _mtime(source: os.PathLike | None) -> float | None:
    try:
        return os.stat(source).st_mtime if source else None
    except OSError:
        return None
