"""Celery tasks: thin wrappers that decode, call the logic, and decide whether to retry."""

from __future__ import annotations

import hashlib
import json
import logging
import time

from celery import shared_task
from celery.signals import worker_ready

from workers import pipeline
from workers.deliver import drain
from workers.errors import GraphRetryable, GraphThrottled, GraphTokenInvalid
from workers.events import Event, parse_envelope
from workers.hydrate import ONE_BY_ONE, hydrate_thread, unavailable
from workers.runtime import Runtime, runtime

log = logging.getLogger(__name__)
HYDRATION_PENDING = {"pending", ONE_BY_ONE}
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
    for event in events:
        pipeline.route(rt, event, force=force)
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
    """Hydrate the pending messages of one conversation with one Graph call under the budget.

    `failures` counts transient Graph errors only, so waiting for budget never inflates the backoff.
    """
    rt = runtime()
    events = [Event.from_dict(record) for record in rt.store.peek(queue, 100)]
    pending = [event for event in events if event.hydration in HYDRATION_PENDING]
    _settle(rt, queue, [event for event in events if event.hydration not in HYDRATION_PENDING])
    if pending:
        delay, failed = _hydrate_pending(rt, queue, pending, failures=failures)
        if delay is not None:
            raise _retry_later(self, rt, queue, delay, failures=failures + 1 if failed else failures)
    pipeline.finish(rt, queue)


def _retry_later(task, rt: Runtime, queue: str, delay: float, **kwargs):
    """The Retry to raise; the queue's flag is held until then so no second task starts on it."""
    countdown = min(delay, rt.settings.max_countdown)
    rt.store.hold(queue, ttl=countdown + rt.settings.visibility_timeout)
    return task.retry(countdown=countdown, kwargs=kwargs or None)


def _hydrate_pending(rt: Runtime, queue: str, pending: list[Event], *,
                     failures: int) -> tuple[float | None, bool]:
    """Returns (seconds until the next try or None when settled, whether this try failed)."""
    account = rt.settings.account_for(pending[0].account_id)
    if account is None:
        _settle(rt, queue, [unavailable(e, "no [[accounts]] entry for this account id") for e in pending])
        return None, False
    if _is_paused(rt, account):
        return rt.settings.paused_recheck_seconds, False
    wait = rt.store.take_call(account.page_id, account.calls_per_second)
    if wait:
        return wait, False
    try:
        outcome = hydrate_thread(pending, account, graph=rt.graph, store=rt.store)
    except GraphThrottled as exc:
        wait = exc.retry_after or rt.settings.throttle_seconds
        rt.store.block_calls(account.page_id, wait)
        log.warning("account=%s throttled (code %s); waiting %.0fs", account.page_id, exc.code, wait)
        return wait, False
    except GraphTokenInvalid as exc:
        rt.store.pause_account(account.page_id, fingerprint(account.access_token), f"code {exc.code}")
        log.error("account=%s token invalid (code %s): hydration paused until the token is replaced",
                  account.page_id, exc.code)
        return rt.settings.paused_recheck_seconds, False
    except GraphRetryable as exc:
        return _transient(rt, queue, pending, exc, failures + 1), True
    _settle(rt, queue, outcome.settled)
    for event in outcome.unsettled:
        rt.store.save_event(event.to_dict())
    if outcome.one_by_one or outcome.more:
        return 0.0, False  # the next call waits for budget anyway
    return (pipeline.backoff(failures + 1), True) if outcome.waiting else (None, False)


def _transient(rt: Runtime, queue: str, pending: list[Event], exc: Exception, failures: int) -> float | None:
    oldest = min((e.timestamp or 0) for e in pending) / 1000
    if oldest and time.time() - oldest > rt.settings.hydrate_max_age:
        _settle(rt, queue, [unavailable(e, f"gave up after transient errors: {exc}") for e in pending])
        return None
    log.warning("transient graph error (failure %d): %s", failures, type(exc).__name__)
    return pipeline.backoff(failures)


def _is_paused(rt: Runtime, account) -> bool:
    paused = rt.store.paused(account.page_id)
    if not paused:
        return False
    if paused.get("token") != fingerprint(account.access_token):
        rt.store.resume_account(account.page_id)
        log.info("account=%s has a new token; hydration resumes", account.page_id)
        return False
    return True


def _settle(rt: Runtime, queue: str, events: list[Event]) -> None:
    for event in events:
        pipeline.dispatch(rt, event)
    rt.store.dequeue(queue, *[event.id for event in events])


def fingerprint(token: str) -> str:
    """A short hash that tells tokens apart without storing them."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


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
