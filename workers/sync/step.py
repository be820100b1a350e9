"""One step of a sync or sweep: at most one Graph call, under the account's shared budget.

A listing call with nested messages carries 25 conversations and their 20 newest messages (with
details); a conversation with more has its older messages read by id and time, 100 a call.
Live hydration goes first: while a live message of the account is due, the job waits.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from workers.delivery.dispatch import dispatch
from workers.errors import GraphPermanent, GraphRetryable, GraphThrottled
from workers.graph_page import Page
from workers.hydration.reader import NESTED, ConversationReader
from workers.records import Event, HydrationQueue
from workers.scheduler import backoff
from workers.settings import Account
from workers.sync.job import SyncJob
from workers.sync.messages import customer_of, message_event
from workers.times import to_millis

if TYPE_CHECKING:
    from workers.stage import Runtime

log = logging.getLogger(__name__)
LISTING_LIMIT = 25
OLDER_LIMIT = 100
SWEEP_GRACE = 120.0   # a sweep leaves the last two minutes to webhooks still on their way
LIVE_FIRST_WAIT = 0.2


def step(rt: Runtime, job: SyncJob, account: Account) -> float:
    """Make at most one call for `job` (updated in place); returns seconds to wait before the next."""
    if job.done:
        return 0.0
    wait = _live_waiting(rt, account) or rt.store.budgets.take_call(account.page_id,
                                                                      account.calls_per_second)
    if wait:
        return wait
    job.calls += 1
    reader = ConversationReader.of(rt, account)
    try:
        if job.older:
            _read_older(rt, job, account, reader)
        else:
            _read_listing(rt, job, account, reader)
    except GraphThrottled as exc:
        wait = exc.retry_after or rt.settings.hydration.throttle_seconds
        rt.store.budgets.block_calls(account.page_id, wait)  # live hydration pauses too
        return wait
    except GraphRetryable as exc:
        log.warning("sync account=%s transient %s %s", account.page_id, type(exc).__name__, exc.where)
        return backoff(min(job.calls, 6))
    if job.listing_done and not job.older:
        job.next_platform()
    return 0.0


def _live_waiting(rt: Runtime, account: Account) -> float:
    """A short wait while a live message of the account is due for hydration, else 0."""
    now_ms = time.time() * 1000
    for account_id in filter(None, (account.page_id, account.instagram_id)):
        due = rt.store.queues.next_ready_at(HydrationQueue(account_id).name)
        if due is not None and due <= now_ms:
            return LIVE_FIRST_WAIT
    return 0.0


def _read_listing(rt: Runtime, job: SyncJob, account: Account, reader: ConversationReader) -> None:
    params: dict = {"platform": job.platform, "fields": f"id,updated_time,{NESTED}",
                    "limit": LISTING_LIMIT}
    if job.cursor:
        params["after"] = job.cursor
    body = reader.get(account.node, params, edge="conversations")
    listed = Page.of(body)
    for conversation in listed.nodes:
        if _listing_ends_at(job, conversation):
            job.listing_done = True
            return
        job.conversations += 1
        _deliver_nested(rt, job, account, conversation)
    job.cursor = listed.after
    job.listing_done = job.cursor is None


def _listing_ends_at(job: SyncJob, conversation: dict) -> bool:
    """Conversations come most recently updated first: stop at the first one not wanted."""
    if job.max_conversations is not None and job.conversations >= job.max_conversations:
        return True
    updated, floor = to_millis(conversation.get("updated_time")), job.listing_floor
    return floor is not None and updated is not None and updated < floor * 1000


def _deliver_nested(rt: Runtime, job: SyncJob, account: Account, conversation: dict) -> None:
    nested = Page.of(conversation.get("messages"))
    _deliver(rt, job, account, conversation["id"], nested.nodes)
    after = nested.after
    if after and job.mode == "sync":  # a sweep reads only what is new: never past the 20 newest
        job.older.append({"conversation": conversation["id"],
                          "customer": customer_of(conversation, account), "after": after})


def _read_older(rt: Runtime, job: SyncJob, account: Account, reader: ConversationReader) -> None:
    work = job.older[0]
    params = {"fields": "id,created_time", "limit": OLDER_LIMIT, "after": work["after"]}
    try:
        page = reader.get(work["conversation"], params, edge="messages")
    except GraphPermanent as exc:  # the conversation went away: nothing more to read there
        log.warning("sync account=%s conversation skipped: %s", account.page_id, exc.where)
        job.older.pop(0)
        return
    listed = Page.of(page)
    _deliver(rt, job, account, work["conversation"], listed.nodes)
    work["after"] = listed.after
    if work["after"] is None:
        job.older.pop(0)


def _deliver(rt: Runtime, job: SyncJob, account: Account, conversation_id: str,
             messages: list[dict]) -> None:
    """Hand the messages no other event brought to the handlers (same id again: dedup skips it)."""
    platform = job.platform or "messenger"
    events = [message_event(m, account=account, platform=platform, conversation_id=conversation_id,
                            source=job.mode) for m in messages if m.get("id")]
    events = [e for e in events if _wanted(job, e)]
    claims = rt.store.sightings.claim_many([(e.account_id or "", e.mid or "", e.id, e.source)
                                            for e in events])
    sightings = dict(zip((e.id for e in events), claims, strict=True))
    job.messages += len(sightings)
    job.new_messages += sum(1 for seen in sightings.values() if seen == "new")
    job.brought_before += sum(1 for seen in sightings.values() if seen not in ("new", "again"))
    dispatch(rt, [e for e in events if sightings.get(e.id) in ("new", "again")])


def _wanted(job: SyncJob, event: Event) -> bool:
    if job.mode != "sweep":
        return True
    created = (event.timestamp or 0) / 1000
    return (job.since or 0) <= created <= job.started_at - SWEEP_GRACE
