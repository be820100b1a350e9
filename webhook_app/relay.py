"""The relay: a thread in each web process that moves inbox rows to the Celery broker, in order."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from typing import Callable

from webhook_app.inbox import INBOX_FILE, Delivery, Inbox

log = logging.getLogger(__name__)
INGEST_TASK = "inbox_relay.ingest"
IDLE_POLL = 0.5          # seconds between looks at the inbox when nobody wakes us
GATHER = 0.002           # after a wake-up, let a few more deliveries arrive: fewer, larger batches
MAX_OUTAGE_WAIT = 10.0   # longest pause between attempts while the broker is down
PRUNE_EVERY = 3600.0


def build_relay(settings, *, wakeup=None) -> "Relay":
    """A relay for the inbox in settings.data_dir, publishing to the configured broker."""
    from workers.celery_config import create_celery

    # NORMAL: a lost "published" mark only publishes a delivery again, which dedup absorbs.
    inbox = Inbox(settings.data_dir / INBOX_FILE, synchronous="NORMAL")
    return Relay(inbox, celery_publisher(create_celery(settings)), wakeup=wakeup)


def celery_publisher(celery_app) -> Callable[[Delivery], None]:
    """Publish a delivery as one `ingest` task message."""
    def publish(delivery: Delivery) -> None:
        body = delivery.body.decode(json.detect_encoding(delivery.body))
        celery_app.send_task(INGEST_TASK, args=[delivery.id, body, delivery.force],
                             retry=True, retry_policy={"max_retries": 1, "interval_start": 0.1})
    return publish


class Relay:
    """Claims unpublished deliveries, publishes them, marks them; waits out broker outages."""

    def __init__(self, inbox: Inbox, publish: Callable[[Delivery], None], *,
                 retention_days: float = 7.0, wakeup=None):
        self.inbox, self.publish = inbox, publish
        self.retention = retention_days * 86400
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # A threading.Event, or a PipeWakeup when the web workers are other processes.
        self._wake, self._stop = wakeup or threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._last_prune = 0.0

    def ensure_running(self) -> None:
        """Start the thread in this process (again after a fork: threads do not survive one)."""
        if self._pid != os.getpid() or not (self._thread and self._thread.is_alive()):
            self._pid, self.owner = os.getpid(), f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            self._thread = threading.Thread(target=self._run, name="inbox-relay", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """A delivery was just recorded: publish it now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current batch."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        pause = 0.1
        while not self._stop.is_set():
            try:
                moved = self.pump()
                self._prune_now_and_then()
                pause = 0.1
            except Exception as exc:  # the broker is down or slow: keep the rows, try again
                log.warning("relay: broker unavailable (%s); retrying in %.1fs", type(exc).__name__, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, MAX_OUTAGE_WAIT)
                continue
            if not moved and self._wake.wait(IDLE_POLL):
                self._wake.clear()
                self._stop.wait(GATHER)

    def pump(self) -> int:
        """Publish one batch of deliveries; returns how many went to the broker."""
        claimed = self.inbox.claim(self.owner)
        published: list[int] = []
        try:
            for delivery in claimed:
                self.publish(delivery)
                published.append(delivery.id)
        finally:
            if published:
                self.inbox.mark_published(published)
            if len(published) < len(claimed):
                self.inbox.release(self.owner)  # try the rest again without waiting out the lease
        return len(published)

    def _prune_now_and_then(self) -> None:
        now = time.time()
        if now - self._last_prune > PRUNE_EVERY:
            self._last_prune = now
            self.inbox.prune(older_than=now - self.retention)
