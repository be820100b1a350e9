"""One hydration run on an account's queue: pause and budget checks, the call, its errors, settling."""

from __future__ import annotations

import hashlib
import logging
import time

from workers import pipeline
from workers.config import Account
from workers.errors import GraphRetryable, GraphThrottled, GraphTokenInvalid
from workers.events import Event
from workers.hydrate import PENDING, Outcome, hydrate_account, unavailable
from workers.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 200
RECHECK_SECONDS = 1.5  # how soon a message the API does not list yet is asked for again


def run(rt: Runtime, queue: str, *, failures: int) -> tuple[float | None, bool]:
    """Returns (seconds until the next run, None when the queue is empty; whether this run failed)."""
    now = time.time() * 1000
    events = [Event.from_dict(r) for r in rt.store.peek(queue, BATCH, ready_by=now)]
    settle(rt, queue, [e for e in events if e.hydration not in PENDING])
    pending = [e for e in events if e.hydration in PENDING]
    if not pending:
        return _next_run(rt, queue), False
    account = rt.settings.account_for(pending[0].account_id)
    if account is None:
        settle(rt, queue, [unavailable(e, "no [[accounts]] entry for this account id") for e in pending])
        return _next_run(rt, queue), False
    if _is_paused(rt, account):
        return rt.settings.paused_recheck_seconds, False
    wait = rt.store.take_call(account.page_id, account.calls_per_second)
    if wait:
        return wait, False
    return _call(rt, queue, account, pending, failures=failures)


def _call(rt: Runtime, queue: str, account: Account, pending: list[Event], *,
          failures: int) -> tuple[float | None, bool]:
    try:
        outcome = hydrate_account(pending, account, graph=rt.graph, store=rt.store)
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
    _record(rt, queue, outcome)
    return (0.0 if outcome.redo or outcome.more else _next_run(rt, queue)), False


def _record(rt: Runtime, queue: str, outcome: Outcome) -> None:
    settle(rt, queue, outcome.settled)
    for event in outcome.redo + outcome.waiting:
        rt.store.save_event(event.to_dict())
    later = time.time() * 1000 + RECHECK_SECONDS * 1000
    rt.store.defer(queue, [event.id for event in outcome.waiting], later)


def _next_run(rt: Runtime, queue: str) -> float | None:
    due = rt.store.next_ready_at(queue)
    return None if due is None else max(0.0, due / 1000 - time.time())


def _transient(rt: Runtime, queue: str, pending: list[Event], exc: Exception, failures: int) -> float | None:
    oldest = min((e.timestamp or 0) for e in pending) / 1000
    if oldest and time.time() - oldest > rt.settings.hydrate_max_age:
        settle(rt, queue, [unavailable(e, f"gave up after transient errors: {exc}") for e in pending])
        return _next_run(rt, queue)
    log.warning("transient graph error (failure %d): %s", failures, type(exc).__name__)
    return pipeline.backoff(failures)


def _is_paused(rt: Runtime, account: Account) -> bool:
    paused = rt.store.paused(account.page_id)
    if not paused:
        return False
    if paused.get("token") != fingerprint(account.access_token):
        rt.store.resume_account(account.page_id)
        log.info("account=%s has a new token; hydration resumes", account.page_id)
        return False
    return True


def settle(rt: Runtime, queue: str, events: list[Event]) -> None:
    """Hand settled events to their handlers and take them off the hydration queue."""
    pipeline.dispatch(rt, *events)
    rt.store.dequeue(queue, *[event.id for event in events])


def fingerprint(token: str) -> str:
    """A short hash that tells tokens apart without storing them."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]
