"""Attach Graph API message details and conversation ids to the messages of one conversation.

Usually one call per run, whatever the number of pending messages: a nested `messages` field
carries the conversation's 20 newest messages, which is all the API will detail anyway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from workers.config import Account
from workers.errors import GraphPermanent
from workers.events import Event, to_millis
from workers.conversations import MESSAGE_FIELDS, NESTED, ConversationReader, Listing
from workers.graph import GraphClient
from workers.store import Store

ONE_BY_ONE = "pending_by_id"  # internal state: listed without details, fetch by message id
GRACE_MS = 10_000
BEYOND_NEWEST = "not among the 20 newest messages of its conversation"


@dataclass
class Outcome:
    """What one hydration call settled, and what must wait for a later call."""

    settled: list[Event] = field(default_factory=list)
    waiting: list[Event] = field(default_factory=list)    # not listed by the API yet: ask later
    one_by_one: list[Event] = field(default_factory=list)  # the API listed them without details
    more: bool = False  # the listing stopped for budget: go on as soon as there is some

    @property
    def unsettled(self) -> list[Event]:
        """Events that stay queued, with what this call learnt about them."""
        return self.waiting + self.one_by_one


def hydrate_thread(events: list[Event], account: Account, *, graph: GraphClient,
                   store: Store) -> Outcome:
    """Hydrate pending message events of one conversation; the caller has paid for one call."""
    reader = ConversationReader(account, graph, store)
    customer, key = events[0].customer_id or "", events[0].thread_key
    conversation_id = store.conversation_id(events[0].account_id, customer)
    single = next((e for e in events if e.hydration == ONE_BY_ONE), None)
    progress = store.load_progress(key)
    wanted = {e.mid for e in events}
    try:
        if progress:  # a listing that ran out of budget last time goes on from its cursor
            conversation_id = progress["conversation_id"]
            listing = reader.newest(conversation_id, progress["page"], wanted=wanted,
                                    read=progress["messages"], granted=True)
        elif single is not None or (conversation_id and len(events) == 1):
            return _hydrate_one(single or events[0], reader, conversation_id)
        else:
            if conversation_id is None:
                conversation_id, node = reader.first_contact(events[0].platform, customer)
                if conversation_id is None:
                    return _no_conversation(events)
                store.remember_conversation(events[0].account_id, customer, conversation_id)
            else:
                node = reader.get(conversation_id, {"fields": NESTED})
            listing = reader.newest(conversation_id, node.get("messages"), wanted=wanted)
    except GraphPermanent as exc:
        store.clear_progress(key)
        return Outcome(settled=[unavailable(e, f"graph: {exc}", conversation_id) for e in events])
    _keep_progress(store, key, conversation_id, listing)
    return _match(events, listing, conversation_id)


def _keep_progress(store: Store, key: str, conversation_id: str, listing: Listing) -> None:
    if listing.next_page is None:
        store.clear_progress(key)
        return
    store.save_progress(key, {"conversation_id": conversation_id, "messages": listing.messages,
                              "page": {"paging": listing.next_page.get("paging")}})


def _no_conversation(events: list[Event]) -> Outcome:
    # A brand-new conversation may take a moment to be listed: fresh events ask again.
    fresh = [e for e in events if _not_visible_yet(e, 0)]
    stale = [unavailable(e, "no conversation with this user") for e in events if e not in fresh]
    return Outcome(settled=stale, waiting=fresh)


def _hydrate_one(event: Event, reader: ConversationReader, conversation_id: str | None) -> Outcome:
    conversation_id = conversation_id or event.conversation_id
    try:
        message = reader.get(event.mid, {"fields": MESSAGE_FIELDS})
    except GraphPermanent as exc:
        return Outcome(settled=[unavailable(event, f"graph: {exc}", conversation_id)])
    return Outcome(settled=[_complete(event, message, conversation_id)])


def _match(events: list[Event], listing: Listing, conversation_id: str | None) -> Outcome:
    messages = listing.messages
    if messages is None:  # no nested messages at all: fetch each message by its id
        return Outcome(one_by_one=[e.replace(conversation_id=conversation_id, hydration=ONE_BY_ONE)
                                   for e in events])
    by_id = {m.get("id"): m for m in messages}
    newest = max((to_millis(m.get("created_time")) or 0 for m in messages), default=0)
    outcome = Outcome(more=listing.next_page is not None)
    for event in events:
        message = by_id.get(event.mid)
        if message is not None and _detailed(message):
            outcome.settled.append(_complete(event, message, conversation_id))
        elif message is not None:
            outcome.one_by_one.append(event.replace(conversation_id=conversation_id, hydration=ONE_BY_ONE))
        elif outcome.more or _not_visible_yet(event, newest):
            outcome.waiting.append(event)
        else:
            outcome.settled.append(unavailable(event, BEYOND_NEWEST, conversation_id))
    return outcome


def _detailed(message: dict) -> bool:
    return "from" in message or "message" in message


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
