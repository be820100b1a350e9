"""Spend one Graph call on an account's pending messages: attach details and conversation ids.

The cheapest call that can settle the most messages wins: the account's conversation listing with
nested messages when several conversations wait (one call for up to 25 of them), else one
conversation with its 20 newest messages (all the API will detail), else a message by its id.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from workers.config import Account
from workers.conversations import MESSAGE_FIELDS, NESTED, ConversationReader, Listing, detailed
from workers.errors import GraphPermanent, GraphRetryable
from workers.events import Event, to_millis
from workers.graph import GraphClient
from workers.store import Store

BY_THREAD = "pending_thread"  # internal states: not found in the listing, ask its conversation;
ONE_BY_ONE = "pending_by_id"  # listed without details, ask by message id
PENDING = {"pending", BY_THREAD, ONE_BY_ONE}
GRACE_MS = 10_000
BEYOND_NEWEST = "not among the 20 newest messages of its conversation"


@dataclass
class Outcome:
    """What one call settled, what must ask again later, and what changed state for the next call."""

    settled: list[Event] = field(default_factory=list)
    waiting: list[Event] = field(default_factory=list)  # not listed by the API yet: later
    redo: list[Event] = field(default_factory=list)     # next call, as soon as there is budget
    more: bool = False                                  # a paged listing stopped for budget


def hydrate_account(events: list[Event], account: Account, *, graph: GraphClient,
                    store: Store) -> Outcome:
    """Choose and make the one call (the caller paid for it) that settles the most of `events`."""
    reader = ConversationReader(account, graph, store)
    threads = _by_thread(events)
    progress = store.load_progress(account.page_id)
    try:
        if progress and progress["thread"] in threads:
            return _hydrate_thread(threads[progress["thread"]], reader, store, progress=progress)
        single = next((e for e in events if e.hydration == ONE_BY_ONE), None)
        if single is not None:
            return _hydrate_one(single, reader, single.conversation_id)
        listable = _listable(threads)
        if len(listable) >= 2:
            return _hydrate_listing(listable, reader, store)
        return _hydrate_thread(next(iter(threads.values())), reader, store)
    except GraphPermanent as exc:
        store.clear_progress(account.page_id)
        return Outcome(settled=[unavailable(e, f"graph: {exc}") for e in events])


def _by_thread(events: list[Event]) -> dict[str, list[Event]]:
    threads: dict[str, list[Event]] = {}
    for event in events:
        threads.setdefault(event.thread_key, []).append(event)
    return threads


def _listable(threads: dict[str, list[Event]]) -> list[list[Event]]:
    """Conversations not yet tried in a listing, of the platform with the most of them."""
    fresh = [group for group in threads.values() if all(e.hydration == "pending" for e in group)]
    platforms = Counter(group[0].platform for group in fresh)
    top = platforms.most_common(1)[0][0] if platforms else None
    return [group for group in fresh if group[0].platform == top]


def _hydrate_listing(groups: list[list[Event]], reader: ConversationReader, store: Store) -> Outcome:
    try:
        found = reader.recent_messages(groups[0][0].platform)
    except (GraphPermanent, GraphRetryable):
        # Too much data for one answer, or a listing the API will not give: ask per conversation.
        found = {}
    outcome = Outcome()
    for event in (e for group in groups for e in group):
        conversation_id, message = found.get(event.mid, (None, None))
        if message is None:
            outcome.redo.append(event.replace(hydration=BY_THREAD))
            continue
        store.remember_conversation(event.account_id, event.customer_id or "", conversation_id)
        outcome.settled.append(_complete(event, message, conversation_id))
    return outcome


def _hydrate_thread(events: list[Event], reader: ConversationReader, store: Store, *,
                    progress: dict | None = None) -> Outcome:
    account_id, customer = events[0].account_id, events[0].customer_id or ""
    conversation_id = store.conversation_id(account_id, customer)
    wanted = {e.mid for e in events}
    if progress:  # a listing that ran out of budget last time goes on from its cursor
        conversation_id = progress["conversation_id"]
        listing = reader.newest(conversation_id, progress["page"], wanted=wanted,
                                read=progress["messages"], granted=True)
    elif conversation_id and len(events) == 1:
        return _hydrate_one(events[0], reader, conversation_id)
    else:
        if conversation_id is None:
            conversation_id, node = reader.first_contact(events[0].platform, customer)
            if conversation_id is None:
                return _no_conversation(events)
            store.remember_conversation(account_id, customer, conversation_id)
        else:
            node = reader.get(conversation_id, {"fields": NESTED})
        listing = reader.newest(conversation_id, node.get("messages"), wanted=wanted)
    _keep_progress(store, reader.account.page_id, events[0].thread_key, conversation_id, listing)
    return _match(events, listing, conversation_id)


def _keep_progress(store: Store, account_id: str, thread: str, conversation_id: str,
                   listing: Listing) -> None:
    if listing.next_page is None:
        store.clear_progress(account_id)
        return
    store.save_progress(account_id, {"thread": thread, "conversation_id": conversation_id,
                                     "messages": listing.messages,
                                     "page": {"paging": listing.next_page.get("paging")}})


def _no_conversation(events: list[Event]) -> Outcome:
    # A brand-new conversation may take a moment to be listed: fresh events ask again.
    fresh = [e for e in events if _not_visible_yet(e, 0)]
    stale = [unavailable(e, "no conversation with this user") for e in events if e not in fresh]
    return Outcome(settled=stale, waiting=fresh)


def _hydrate_one(event: Event, reader: ConversationReader, conversation_id: str | None) -> Outcome:
    try:
        message = reader.get(event.mid, {"fields": MESSAGE_FIELDS})
    except GraphPermanent as exc:
        return Outcome(settled=[unavailable(event, f"graph: {exc}", conversation_id)])
    return Outcome(settled=[_complete(event, message, conversation_id)])


def _match(events: list[Event], listing: Listing, conversation_id: str | None) -> Outcome:
    if listing.messages is None:  # no nested messages at all: fetch each message by its id
        return Outcome(redo=[e.replace(conversation_id=conversation_id, hydration=ONE_BY_ONE)
                             for e in events])
    by_id = {m.get("id"): m for m in listing.messages}
    newest = max((to_millis(m.get("created_time")) or 0 for m in listing.messages), default=0)
    outcome = Outcome(more=listing.next_page is not None)
    for event in events:
        message = by_id.get(event.mid)
        if message is not None and detailed(message):
            outcome.settled.append(_complete(event, message, conversation_id))
        elif message is not None:
            outcome.redo.append(event.replace(conversation_id=conversation_id, hydration=ONE_BY_ONE))
        elif outcome.more:
            outcome.redo.append(event)
        elif _not_visible_yet(event, newest):
            outcome.waiting.append(event)
        else:
            outcome.settled.append(unavailable(event, BEYOND_NEWEST, conversation_id))
    return outcome


def _complete(event: Event, message: dict, conversation_id: str | None) -> Event:
    return event.replace(conversation_id=conversation_id, message=message, hydration="complete")


def _not_visible_yet(event: Event, newest_ms: int) -> bool:
    # Newer than anything the API lists and only seconds old: the API may not show it yet.
    now_ms = time.time() * 1000
    return bool(event.timestamp) and event.timestamp > newest_ms and now_ms - event.timestamp < GRACE_MS


def unavailable(event: Event, reason: str, conversation_id: str | None = None) -> Event:
    """The event delivered with the webhook's own data, saying why the API gave no details."""
    return event.replace(conversation_id=conversation_id or event.conversation_id,
                         message=webhook_message(event), hydration="unavailable",
                         hydration_error=reason)


def webhook_message(event: Event) -> dict:
    """A Graph-shaped message object built from the webhook item alone."""
    raw = event.raw if isinstance(event.raw, dict) else {}
    body = raw.get("message") if isinstance(raw.get("message"), dict) else {}
    created = (datetime.fromtimestamp(event.timestamp / 1000, timezone.utc).isoformat()
               if event.timestamp else None)
    message = {"id": event.mid, "created_time": created, "from": {"id": event.sender_id},
               "to": {"data": [{"id": event.recipient_id}]}, "message": body.get("text", "")}
    if body.get("attachments"):
        message["attachments"] = {"data": body["attachments"]}
    return message
