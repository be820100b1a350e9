"""Celery tasks: thin wrappers that decode, call the stage, and decide whether to retry.

Only what can succeed later is retried: the store or the broker out of reach, for as long as that
lasts, each delay below the visibility timeout; waits (for budget, backoff or a handler) are retries
too, and no number of them is ever a failure. Bad data or a bug fails once, visibly: an ingest
is reported back to its inbox (`deliveries list --failed`, then `deliveries replay`); a drain task
logs and gives its queue back to the sweep.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from celery import Task, current_app, shared_task
from celery.exceptions import Reject, Retry
from celery.signals import task_postrun, worker_process_shutdown, worker_ready

from workers.connect import tokens
from workers.delivery.drain import run_queue
from workers.hydration import run as hydration
from workers.ingest.parse import parse_envelope
from workers.ingest.route import route
from workers.records import DeliveryQueue, HydrationQueue, Queue, parse_queue
from workers.runtime.context import Runtime, RuntimeCache
from workers.scheduler import (
    DELIVER_TASK,
    HYDRATE_TASK,
    INGEST_TASK,
    SWEEP_TASK,
    SYNC_TASK,
    TASK_ID,
    backoff,
    drained_by,
)
from workers.state.waits import is_wait
from workers.sync import background as sync_runs

log = logging.getLogger(__name__)
SWEEP_EVERY = 60.0
SYNC_SLICE = 10.0  # seconds one sync task reads before a later task goes on

# The boundary where each worker process builds its collaborators, once (again on a new config).
_runtimes = RuntimeCache(lambda name, args, countdown: current_app.send_task(
    name, args=args, countdown=countdown))


class StageTask(Task):
    """Late acknowledgement: a task whose worker dies is handed to another. Retries are not
    capped: waiting (for budget, backoff, a handler, or a store that is full or down) is no
    failure."""

    acks_late = True
    max_retries = None

    def run_stage(self, rt: Runtime, stage: Callable[[], Any], on_bug: Callable[[Exception], None]) -> Any:
        """Run a stage: wait out store and broker errors (retries with backoff, for as long as they
        last); hand any other error to `on_bug`, once."""
        if self.request.id:
            TASK_ID.set(self.request.id)  # the owner of the flags this stage claims
        try:
            return stage()
        except (Retry, Reject):
            raise
        except Exception as exc:
            if is_wait(exc):
                attempt = self.request.retries + 1
                countdown = min(backoff(attempt), rt.settings.max_countdown)
                log.warning("task=%s store or broker not available (%s); retry %d in %.1fs",
                            self.name, _reason(exc), attempt, countdown)
                raise later(self, countdown=countdown) from None
            # bad data or a bug: fail once, where an operator sees it
            log.error("task=%s failed for good: %s", self.name, type(exc).__name__)
            on_bug(exc)
        return None


def _reason(exc: Exception) -> str:
    """The error's type, and for a Redis refusal its code word (MISCONF, OOM ...): never data."""
    answer = str(exc).rsplit("caused error: ", 1)[-1]
    word = answer.split(" ", 1)[0] if isinstance(exc, redis.ResponseError) else ""
    return f"{type(exc).__name__} {word}".strip() if word.isupper() else type(exc).__name__


def later(task: Task, **options: Any) -> Exception:
    """The Retry to raise. When the broker does not take the retry (Celery would then drop the
    message), the message goes back to the queue instead: the work is never lost."""
    try:
        return task.retry(throw=False, **options)
    except Reject:
        return Reject("the broker did not take the retry", requeue=True)


@shared_task(name=INGEST_TASK, bind=True, base=StageTask)
def ingest(self: StageTask, delivery_id: int, body: str, force: bool = False,
           inbox: str | None = None, api_version: str | None = None) -> int:
    """Parse one webhook delivery and route each of its events; returns the event count.

    `api_version` (the delivery's Facebook-API-Version) comes last and may be missing: messages
    queued by an earlier release still run."""
    rt = _runtimes.get()

    def stage() -> int:
        envelope = json.loads(rt.codec.open_text(body, what=f"delivery {delivery_id}"))
        events = parse_envelope(envelope, api_version=api_version)
        where = route(rt, events, force=force)
        if inbox:
            rt.store.intake.confirm(inbox, delivery_id)
        log.info("delivery=%s events=%d: %s", delivery_id, len(events),
                 ", ".join(f"{count} {place}" for place, count in sorted(where.items())) or "none")
        return len(events)

    def report(exc: Exception) -> None:
        rt.store.failures.record(inbox or "unknown", delivery_id, f"{type(exc).__name__}: {exc}"[:500])

    return self.run_stage(rt, stage, report) or 0


@shared_task(name=DELIVER_TASK, bind=True, base=StageTask)
def deliver(self: StageTask, queue_name: str, waits: int = 0) -> None:
    """Drain one (handler, conversation) queue in order, when its handler may be called.

    `waits` counts the retries in a row that found the handler paused or its slots taken.
    """
    rt = _runtimes.get()
    queue = parse_queue(queue_name)
    if not isinstance(queue, DeliveryQueue) or queue.handler not in rt.handlers:
        log.warning("queue=%s has no configured handler; it waits", queue_name)
        rt.store.flags.release(queue_name)
        return
    loaded = rt.handlers[queue.handler]

    def stage() -> None:
        delay, waited = run_queue(rt.store, loaded, queue, lease=rt.settings.slot_lease, waits=waits,
                                  journal=rt.journal)
        if delay is not None:
            raise _retry_later(self, rt, queue, delay, waits=waited)
        rt.scheduler.finish(queue)

    self.run_stage(rt, stage, lambda exc: rt.scheduler.failed(queue))


@shared_task(name=HYDRATE_TASK, bind=True, base=StageTask)
def hydrate(self: StageTask, queue_name: str, failures: int = 0) -> None:
    """Spend one Graph call, under the account's budget, on the account's pending messages.

    `failures` counts transient Graph errors only, so waiting for budget never inflates the backoff.
    """
    rt = _runtimes.get()
    queue = parse_queue(queue_name)
    if not isinstance(queue, HydrationQueue):
        raise ValueError(f"not a hydration queue: {queue_name}")

    def stage() -> None:
        delay, failed = hydration.run(rt, queue, failures=failures)
        if delay is not None:
            raise _retry_later(self, rt, queue, delay, failures=failures + 1 if failed else 0)
        rt.scheduler.finish(queue)

    self.run_stage(rt, stage, lambda exc: rt.scheduler.failed(queue))


def _retry_later(task: Task, rt: Runtime, queue: Queue, delay: float, **kwargs: int) -> Exception:
    """The Retry to raise; the queue's flag is held until then so no second task starts on it.

    Waiting (for budget, backoff or a handler) is not a failure: it does not count as a retry.
    """
    countdown = min(delay, rt.settings.max_countdown)
    rt.scheduler.hold(queue, countdown)
    return later(task, countdown=countdown, kwargs=kwargs or None)


@shared_task(name=SYNC_TASK, bind=True, base=StageTask)
def sync(self: StageTask, page_id: str, mode: str = "sync") -> None:
    """Go on with an account's checkpointed sync (or gap sweep) for a while, then in a later task."""
    rt = _runtimes.get()

    def stage() -> None:
        wait = sync_runs.continue_for(rt, page_id, mode, seconds=SYNC_SLICE)
        if wait is not None:
            raise later(self, countdown=min(wait, rt.settings.max_countdown))

    self.run_stage(rt, stage, lambda exc: sync_runs.release(rt, page_id, mode))


@shared_task(name=SWEEP_TASK, bind=True, base=StageTask)
def sweep(self: StageTask) -> int:
    """Restart drain tasks for queues nobody drains (e.g. after a crash), start the gap sweeps
    that are due and refresh the Instagram Login tokens that are; repeats every minute."""
    rt = _runtimes.get()
    started = rt.scheduler.restart_orphans(drained_by(rt.handlers))
    sync_runs.start_due_sweeps(rt)
    for chore in (tokens.refresh_due, _prune_event_log):
        try:
            chore(rt)
        except Exception as exc:  # the next round tries again; the sweep must go on
            log.warning("task=%s %s not done: %s", SWEEP_TASK, chore.__name__, type(exc).__name__)
    # Several workers start sweeps; only the one that takes the flag schedules the next round.
    if rt.store.flags.claim("sweep", ttl=SWEEP_EVERY * 0.9):
        self.apply_async(countdown=SWEEP_EVERY)
    return started


def _prune_event_log(rt: Runtime) -> None:
    """Remove event log rows older than `[events] keep`, a little at a time."""
    if rt.journal is not None:
        rt.journal.prune(time.time() - rt.settings.events.keep)


@task_postrun.connect
@worker_process_shutdown.connect  # what a log that refused lately still holds, before the process goes
def _write_event_log(sender: object = None, **_kwargs: object) -> None:
    """Write what the task gave the event log, in one transaction, once its work is done."""
    rt = _runtimes.built
    if rt is not None and rt.journal is not None:
        rt.journal.flush()


@worker_ready.connect
def _sweep_at_start(sender: object = None, **_kwargs: object) -> None:
    sweep.apply_async()
