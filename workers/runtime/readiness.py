"""When `run` says `inbox-relay ready`: once its web answers and the broker and store answer too.

Until they do, the web already accepts deliveries (each is kept in the inbox until the broker takes
it), and `run` says that and what it waits for, by URL without password, once; never `ready`.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import kombu

from workers.runtime.logs import say
from workers.settings import Settings
from workers.state import Store
from workers.urls import shown

LOOK_EVERY = 2.0


def unreachable(settings: Settings) -> str | None:
    """What does not answer (the store, the broker), as a line for the user; None when both do."""
    store, broker = settings.redis_store_url, settings.celery_broker_url
    try:
        Store(store).health.ping()
    except Exception as exc:
        return f"the store at {shown(store)} ({_cause(exc, store)})"
    if broker == store:
        return None
    try:
        with kombu.Connection(broker, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"the broker at {shown(broker)} ({_cause(exc, broker)})"
    return None


def announce_when_reachable(settings: Settings, webhook_url: str, stopping: list) -> threading.Thread:
    """Print the ready line once the broker and store answer (looking every 2 s, in a thread:
    a look may take a connect timeout, and the supervisor must go on tending its parts)."""
    def watch() -> None:
        said_waiting = False
        while not stopping:
            missing = unreachable(settings)
            if missing is None:
                say(f"inbox-relay ready: webhook at {webhook_url} (Ctrl-C stops)")
                return
            if not said_waiting:
                say(f"inbox-relay: accepting deliveries at {webhook_url} (each kept in the inbox), "
                    f"not ready: waiting for {missing}")
                said_waiting = True
            threading.Event().wait(LOOK_EVERY)

    thread = threading.Thread(target=watch, name="readiness", daemon=True)
    thread.start()
    return thread


def _cause(exc: Exception, url: str) -> str:
    text = " ".join(str(exc).split())[:160] or type(exc).__name__
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text
