"""Celery tasks: thin wrappers that decode, call the stage, and decide whether to retry."""

from __future__ import annotations

import json
import logging

from celery import Task, current_app, shared_task
from celery.signals import worker_ready

from workers.delivery.drain import drain
from workers.hydration import run as hydration
from workers.ingest.parse import parse_envelope
from workers.ingest.route import route
from workers.records import DeliveryQueue, HydrationQueue, Queue, parse_queue
from workers.runtime.context import Runtime, RuntimeCache
from workers.scheduler import DELIVER_TASK, HYDRATE_TASK, INGEST_TASK, SWEEP_TASK

log = logging.getLogger(__name__)
SWEEP_EVERY = 60.0


class RelayTask(Task):
    """The options every inbox-relay task shares."""

    # Anything unforeseen (a Redis blip, a bug) retries with capped backoff instead of losing the task.
    acks_late = True
    max_retries = None
    autoretry_for = (Exception,)
    retry_backoff = True
    retry_backoff_max = 300
    retry_jitter = True


# The boundary where each worker process builds its collaborators, once (again on a new config).
_runtimes = RuntimeCache(lambda name, args, countdown: current_app.send_task(
    name, args=args, countdown=countdown))


@shared_task(name=INGEST_TASK, bind=True, base=RelayTask)
def ingest(self: RelayTask, delivery_id: int, body: str, force: bool = False) -> int:
    """Parse one webhook delivery and route each of its events; returns the event count."""
    try:
        envelope = json.loads(body)
    except ValueError:
        log.error("delivery=%s is not JSON; dropped", delivery_id)
        return 0
    events = parse_envelope(envelope) if isinstance(envelope, dict) else []
    route(_runtimes.get(), events, force=force)
    log.info("delivery=%s events=%d", delivery_id, len(events))
    return len(events)


@shared_task(name=DELIVER_TASK, bind=True, base=RelayTask)
def deliver(self: RelayTask, queue_name: str) -> None:
    """Drain one (handler, conversation) queue in order."""
    rt, queue = _runtimes.get(), parse_queue(queue_name)
    assert isinstance(queue, DeliveryQueue)
    loaded = rt.handlers.get(queue.handler)
    if loaded is None:
        log.warning("handler=%s is not configured; its queue waits", queue.handler)
        rt.store.flags.release(queue.name)
        return
    delay = drain(rt.store, loaded, queue)
    if delay is not None:
        raise _retry_later(self, rt, queue, delay)
    rt.scheduler.finish(queue)


@shared_task(name=HYDRATE_TASK, bind=True, base=RelayTask)
def hydrate(self: RelayTask, queue_name: str, failures: int = 0) -> None:
    """Spend one Graph call, under the account's budget, on the account's pending messages.

    `failures` counts transient Graph errors only, so waiting for budget never inflates the backoff.
    """
    rt, queue = _runtimes.get(), parse_queue(queue_name)
    assert isinstance(queue, HydrationQueue)
    delay, failed = hydration.run(rt, queue, failures=failures)
    if delay is not None:
        raise _retry_later(self, rt, queue, delay, failures=failures + 1 if failed else 0)
    rt.scheduler.finish(queue)


def _retry_later(task: Task, rt: Runtime, queue: Queue, delay: float, **kwargs: int) -> Exception:
    """The Retry to raise; the queue's flag is held until then so no second task starts on it."""
    countdown = min(delay, rt.settings.max_countdown)
    rt.scheduler.hold(queue, countdown)
    return task.retry(countdown=countdown, kwargs=kwargs or None)


@shared_task(name=SWEEP_TASK, bind=True, base=RelayTask)
def sweep(self: RelayTask) -> int:
    """Restart drain tasks for queues nobody drains (e.g. after a crash); repeats every minute."""
    rt = _runtimes.get()
    started = 0
    for name in rt.store.queues.names():
        if not rt.store.flags.is_claimed(name):
            rt.scheduler.schedule(parse_queue(name))
            started += 1
    # Several workers start sweeps; only the one that takes the flag schedules the next round.
    if rt.store.flags.claim("sweep", ttl=SWEEP_EVERY * 0.9):
        self.apply_async(countdown=SWEEP_EVERY)
    return started


@worker_ready.connect
def _sweep_at_start(sender: object = None, **_kwargs: object) -> None:
    sweep.apply_async()
