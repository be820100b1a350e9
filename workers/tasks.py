"""Celery tasks: thin wrappers that decode, call the logic, and decide whether to retry."""

from __future__ import annotations

import json
import logging

from celery import shared_task
from celery.signals import worker_ready

from workers import hydration, pipeline
from workers.deliver import drain
from workers.events import parse_envelope
from workers.runtime import Runtime, runtime

log = logging.getLogger(__name__)
SWEEP_EVERY = 60.0
# Anything unforeseen (a Redis blip, a bug) retries with capped backoff instead of losing the task.
TASK_OPTIONS = {"bind": True, "max_retries": None, "acks_late": True, "autoretry_for": (Exception,),
                "retry_backoff": True, "retry_backoff_max": 300, "retry_jitter": True}


@shared_task(name="inbox_relay.ingest", **TASK_OPTIONS)
def ingest(self, delivery_id: int, body: str, force: bool = False) -> int:
    """Parse one webhook delivery and route each of its events; returns the event count."""
    rt = runtime()
    try:
        envelope = json.loads(body)
    except ValueError:
        log.error("delivery=%s is not JSON; dropped", delivery_id)
        return 0
    events = parse_envelope(envelope) if isinstance(envelope, dict) else []
    pipeline.route(rt, events, force=force)
    log.info("delivery=%s events=%d", delivery_id, len(events))
    return len(events)


@shared_task(name="inbox_relay.deliver", **TASK_OPTIONS)
def deliver(self, queue: str) -> None:
    """Drain one (handler, conversation) queue in order."""
    rt = runtime()
    handler_name = queue.split("|")[1]
    loaded = rt.handlers.get(handler_name)
    if loaded is None:
        log.warning("handler=%s is not configured; its queue waits", handler_name)
        rt.store.release(queue)
        return
    delay = drain(rt.store, loaded, queue)
    if delay is not None:
        raise _retry_later(self, rt, queue, delay)
    pipeline.finish(rt, queue)


@shared_task(name="inbox_relay.hydrate", **TASK_OPTIONS)
def hydrate(self, queue: str, failures: int = 0) -> None:
    """Spend one Graph call, under the account's budget, on the account's pending messages.

    `failures` counts transient Graph errors only, so waiting for budget never inflates the backoff.
    """
    rt = runtime()
    delay, failed = hydration.run(rt, queue, failures=failures)
    if delay is not None:
        raise _retry_later(self, rt, queue, delay, failures=failures + 1 if failed else 0)
    pipeline.finish(rt, queue)


def _retry_later(task, rt: Runtime, queue: str, delay: float, **kwargs):
    """The Retry to raise; the queue's flag is held until then so no second task starts on it."""
    countdown = min(delay, rt.settings.max_countdown)
    rt.store.hold(queue, ttl=countdown + rt.settings.visibility_timeout)
    return task.retry(countdown=countdown, kwargs=kwargs or None)


@shared_task(name="inbox_relay.sweep", **TASK_OPTIONS)
def sweep(self) -> int:
    """Restart drain tasks for queues nobody drains (e.g. after a crash); repeats every minute."""
    rt = runtime()
    started = 0
    for queue in rt.store.queues():
        if not rt.store.is_claimed(queue):
            pipeline.schedule(rt, queue)
            started += 1
    # Several workers start sweeps; only the one that takes the flag schedules the next round.
    if rt.store.claim("sweep", ttl=SWEEP_EVERY * 0.9):
        self.apply_async(countdown=SWEEP_EVERY)
    return started


@worker_ready.connect
def _sweep_at_start(sender=None, **_kwargs) -> None:
    sweep.apply_async()


def task_for_queue(queue: str):
    """The drain task of a queue name."""
    return hydrate if queue.startswith("h|") else deliver
