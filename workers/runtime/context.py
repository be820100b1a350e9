"""What a worker process builds once from its settings: store, Graph client, handlers, scheduler."""

from __future__ import annotations

import logging

from workers.crypto import Codec
from workers.delivery.plugins import load_handlers
from workers.events.database import open_database
from workers.events.log import EventLog
from workers.graph import GraphClient
from workers.runtime.config import load_settings, source_mtime
from workers.scheduler import Scheduler, SendTask
from workers.settings import Settings
from workers.stage import DELIVER_INLINE_FOR, Runtime
from workers.state import Store

log = logging.getLogger(__name__)


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
    instagram = GraphClient(meta.instagram_graph_url, meta.graph_version) if any(
        account.instagram_login for account in settings.accounts) else None
    journal = None if settings.events.log_url == "off" else event_log_for(settings, codec)
    return Runtime(settings, store, graph, load_handlers(settings), scheduler, codec,
                   deliver_inline_for=DELIVER_INLINE_FOR, instagram_graph=instagram, journal=journal)


def event_log_for(settings: Settings, codec: Codec | None = None) -> EventLog:
    """The event log of these settings, opened on first use (so a worker starts without it)."""
    codec = codec or Codec(settings.encryption_keys)
    return EventLog(lambda: open_database(settings.events.log_url, settings.data_dir), codec)


class RuntimeCache:
    """One Runtime per process, rebuilt when the configuration file changes (a new token resumes)."""

    def __init__(self, send_task: SendTask):
        self.send_task = send_task
        self._runtime: Runtime | None = None
        self._mtime: float | None = None

    @property
    def built(self) -> Runtime | None:
        """The Runtime built so far (None before the first task), without building one."""
        return self._runtime

    def get(self) -> Runtime:
        """The current Runtime, built on first use."""
        current = self._runtime
        if current is None:
            return self._build(load_settings())
        if current.settings.source and source_mtime(current.settings.source) != self._mtime:
            log.info("configuration changed; reloading")
            return self._build(load_settings(current.settings.source))
        return current

    def _build(self, settings: Settings) -> Runtime:
        replaced = self._runtime
        self._mtime = source_mtime(settings.source)
        self._runtime = build_runtime(settings, self.send_task)
        if replaced is not None:  # closed once its successor exists: a failed build keeps it
            replaced.close()
        return self._runtime
