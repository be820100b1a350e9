"""A web node's relay, wired: its inbox, the store, the broker, and the restarts of lost tasks."""

from __future__ import annotations

from workers.inbox.broker import broker_backlog, celery_publisher
from workers.inbox.database import INBOX_FILE, Inbox
from workers.inbox.relay import Relay, Wakeup
from workers.inbox.watch import StoreWatch
from workers.runtime.celery_setup import create_celery
from workers.scheduler import Scheduler, drained_by
from workers.settings import Settings
from workers.state import Store


def build_relay(settings: Settings, *, wakeup: Wakeup | None = None) -> Relay:
    """A relay for the inbox in settings.data_dir, publishing to the configured broker."""
    # NORMAL: a lost "published" mark only publishes a delivery again, which dedup absorbs.
    inbox = Inbox(settings.data_dir / INBOX_FILE, synchronous="NORMAL")
    store = Store(settings.redis_store_url)
    watch = StoreWatch(store, inbox)
    celery_app = create_celery(settings)
    def connect() -> None:
        store.health.ping()
        celery_app.connection_for_write().ensure_connection(max_retries=1)

    scheduler = Scheduler(store.flags, store.queues, celery_app.send_task,
                          visibility_timeout=settings.queue.visibility_timeout, coalesce_seconds=0.0)
    handlers = {handler.name for handler in settings.handlers}

    def restart_orphans() -> int:
        return scheduler.restart_orphans(drained_by(handlers))

    return Relay(inbox, celery_publisher(celery_app, watch.inbox_id), wakeup=wakeup, watch=watch,
                 replay_window=settings.queue.replay_window, retention=settings.queue.retention,
                 connect=connect, confirm_within=2.5 * settings.queue.visibility_timeout,
                 stuck_after=settings.queue.visibility_timeout, backlog=broker_backlog(celery_app),
                 restart_orphans=restart_orphans)
