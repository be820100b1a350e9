"""What a worker process builds once from Settings: store, Graph client, handlers."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from workers.config import Settings, load_settings
from workers.graph import GraphClient
from workers.handlers import LoadedHandler, load_handlers
from workers.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """The shared objects every task works with."""

    settings: Settings
    store: Store
    graph: GraphClient
    handlers: dict[str, LoadedHandler]
    config_mtime: float | None


def build_runtime(settings: Settings) -> Runtime:
    """Build the objects of one worker process from its settings."""
    secret = settings.app_secrets[0] if settings.appsecret_proof else None
    graph = GraphClient(settings.graph_url, settings.graph_version, app_secret=secret)
    return Runtime(settings, Store(settings.redis_store_url), graph, load_handlers(settings),
                   _mtime(settings))


_current: Runtime | None = None


def runtime() -> Runtime:
    """This process's Runtime; rebuilt when the configuration file changes (a new token resumes)."""
    global _current
    if _current is None:
        _current = build_runtime(load_settings())
    elif _current.settings.source and _mtime(_current.settings) != _current.config_mtime:
        log.info("configuration changed; reloading")
        _current = build_runtime(load_settings(_current.settings.source))
    return _current


def _mtime(settings: Settings) -> float | None:
    try:
        return os.stat(settings.source).st_mtime if settings.source else None
    except OSError:
        return None
