"""The console's collaborators from its settings, each built on first use and kept: a console
that starts while Redis or the log's database is down still serves its login page."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from workers.events.log import EventLog
from workers.settings import Settings

if TYPE_CHECKING:
    from workers.stage import Runtime
    from workers.state import Store

T = TypeVar("T")


def event_log(settings: Settings) -> EventLog:
    """The event log of these settings (its database opens on the first query)."""
    from workers.runtime.context import event_log_for

    return event_log_for(settings)


def lazy_store(settings: Settings) -> Callable[[], Store]:
    """The shared Store, opening what is sealed with the configured keys."""
    from workers.cli.common import store_for

    return _once(lambda: store_for(settings))


def lazy_runtime(settings: Settings) -> Callable[[], Runtime]:
    """A Runtime as `dead-letters replay` builds one: replay queues work and schedules drain
    tasks on the broker, for a worker to deliver."""
    def build() -> Runtime:
        from workers.runtime.celery_setup import create_celery
        from workers.runtime.context import build_runtime

        return build_runtime(settings, create_celery(settings).send_task)

    return _once(build)


def _once(build: Callable[[], T]) -> Callable[[], T]:
    """`build` called on first use only (a failed build is tried again next time)."""
    built: list[T] = []
    lock = threading.Lock()

    def get() -> T:
        with lock:
            if not built:
                built.append(build())
            return built[0]

    return get
