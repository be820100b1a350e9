"""One hydration run on an account's queue: pause and budget checks, the call, its errors, settling."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from workers.delivery.dispatch import dispatch
from workers.errors import GraphError, GraphRetryable, GraphThrottled, GraphTokenInvalid
from workers.hydration.fallback import unavailable
from workers.hydration.pending import Pending
from workers.hydration.planner import Outcome, hydrate_account
from workers.hydration.reader import ConversationReader
from workers.metrics import HYDRATION
from workers.records import Event, HydrationQueue
from workers.scheduler import backoff
from workers.settings import Account
from workers.state.accounts import fingerprint

if TYPE_CHECKING:
    from workers.stage import Runtime

log = logging.getLogger(__name__)
BATCH = 200
RECHECK_SECONDS = 1.5  # how soon a message the API does not list yet is asked for again

Next = tuple[float | None, bool]  # (seconds until the next run, None when empty; whether it failed)


def run(rt: Runtime, queue: HydrationQueue, *, failures: int) -> Next:
    """Spend at most one Graph call on the queue's due messages; say when to run again."""
    now = time.time() * 1000
    pending = [Pending.from_dict(r) for r in rt.store.queues.peek(queue.name, BATCH, ready_by=now)]
    if not pending:
        return _next_run(rt, queue), False
    account = rt.settings.account_for(queue.account_id)
    if account is None:
        reason = "no [[accounts]] entry for this account id"
        settle(rt, queue, [unavailable(p.event, reason) for p in pending])
        return _next_run(rt, queue), False
    if _is_paused(rt, account):
        return rt.settings.hydration.paused_recheck_seconds, False
    wait = rt.store.budgets.take_call(account.page_id, account.calls_per_second)
    if wait:
        return wait, False
    return _call(rt, queue, account, pending, failures=failures)


def _call(rt: Runtime, queue: HydrationQueue, account: Account, pending: list[Pending], *,
          failures: int) -> Next:
    reader = ConversationReader.of(rt, account)
    try:
        outcome = hydrate_account(pending, reader, rt.store.accounts)
    except GraphThrottled as exc:
        wait = exc.retry_after or rt.settings.hydration.throttle_seconds
        rt.store.budgets.block_calls(account.page_id, wait)
        log.warning("account=%s throttled (%s); waiting %.0fs", account.page_id, exc.where, wait)
        return wait, False
    except GraphTokenInvalid as exc:
        if rt.token_for(account) != reader.token:  # refreshed meanwhile: the next call carries it
            return 0.0, False
        rt.store.accounts.pause(account.page_id, fingerprint(reader.token), f"code {exc.code}")
        log.error("account=%s token invalid (%s): hydration paused until the token is replaced",
                  account.page_id, exc.where)
        return rt.settings.hydration.paused_recheck_seconds, False
    except GraphRetryable as exc:
        return _transient(rt, queue, account, pending, exc, failures + 1), True
    rt.store.accounts.clear_graph_trouble(account.page_id)
    _record(rt, queue, outcome)
    return (0.0 if outcome.redo or outcome.more else _next_run(rt, queue)), False


def _record(rt: Runtime, queue: HydrationQueue, outcome: Outcome) -> None:
    settle(rt, queue, outcome.settled)
    for item in outcome.redo + outcome.waiting:
        rt.store.queues.update(queue.name, item.event.id, item.to_dict())
    later = time.time() * 1000 + RECHECK_SECONDS * 1000
    rt.store.queues.defer(queue.name, [item.event.id for item in outcome.waiting], later)


def _next_run(rt: Runtime, queue: HydrationQueue) -> float | None:
    due = rt.store.queues.next_ready_at(queue.name)
    return None if due is None else max(0.0, due / 1000 - time.time())


def _transient(rt: Runtime, queue: HydrationQueue, account: Account, pending: list[Pending],
               exc: GraphError, failures: int) -> float | None:
    first_seen = min(p.since for p in pending)
    gives_up_at = first_seen + rt.settings.hydration.max_age
    if time.time() <= gives_up_at:
        delay = backoff(failures)
        first = rt.store.accounts.note_graph_trouble(account.page_id, {
            "where": exc.where, "message": _without_tokens(exc.message, rt, account),
            "at": time.time(), "next_try": time.time() + delay, "gives_up_at": gives_up_at})
        # The cause once per outage (until a call succeeds); `status` shows the rest.
        log.log(logging.WARNING if first else logging.DEBUG,
                "account=%s Graph API failing (%s %s); retrying, `inbox-relay status` follows it",
                account.page_id, type(exc).__name__, exc.where)
        return delay
    reason = f"gave up after transient errors for {rt.settings.hydration.max_age:.0f}s: {exc}"
    settle(rt, queue, [unavailable(p.event, reason) for p in pending])
    rt.store.accounts.count_given_up(queue.account_id or "", len(pending))
    log.error("account=%s gave up hydrating %d message(s) after transient errors: events %s",
              queue.account_id, len(pending), ",".join(p.event.id for p in pending))
    return _next_run(rt, queue)


def _without_tokens(text: str, rt: Runtime, account: Account) -> str:
    for token in {account.access_token, rt.token_for(account)} - {""}:
        text = text.replace(token, "<token>")
    return text


def _is_paused(rt: Runtime, account: Account) -> bool:
    paused = rt.store.accounts.paused(account.page_id)
    if not paused:
        return False
    if paused.get("token") != fingerprint(rt.token_for(account)):  # replaced, or refreshed
        rt.store.accounts.resume(account.page_id)
        log.info("account=%s has a new token; hydration resumes", account.page_id)
        return False
    return True


def settle(rt: Runtime, queue: HydrationQueue, events: list[Event]) -> None:
    """Hand settled events to their handlers and take them off the hydration queue."""
    for event in events:
        HYDRATION.labels(event.hydration).inc()
    dispatch(rt, events)
    rt.store.queues.dequeue(queue.name, *[event.id for event in events])

