"""Attach Graph API message details and conversation ids to the messages of one conversation.

One call per run, whatever the number of pending messages: a nested `messages` field carries the
conversation's 20 newest messages, which is all the API will detail anyway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from workers.config import Account
from workers.errors import GraphPermanent
from workers.events import Event, to_millis
from workers.graph import GraphClient
from workers.store import Store

MESSAGE_FIELDS = "id,created_time,from,to,message,attachments,sticker,shares,tags"
NEWEST = 20
NESTED = f"messages.limit({NEWEST}){{{MESSAGE_FIELDS}}}"
ONE_BY_ONE = "pending_by_id"  # internal state: listed without details, fetch by message id
GRACE_MS = 10_000
BEYOND_NEWEST = "not among the 20 newest messages of its conversation"


@dataclass
class Outcome:
    """What one hydration call settled, and what must wait for a later call."""

    settled: list[Event] = field(default_factory=list)
    waiting: list[Event] = field(default_factory=list)    # not listed by the API yet: ask later
    one_by_one: list[Event] = field(default_factory=list)  # the API listed them without details

    @property
    def unsettled(self) -> list[Event]:
        """Events that stay queued, with what this call learnt about them."""
        return self.waiting + self.one_by_one


def hydrate_thread(events: list[Event], account: Account, *, graph: GraphClient,
                   store: Store) -> Outcome:
    """Hydrate pending message events of one conversation with a single Graph call."""
    customer = events[0].customer_id or ""
    conversation_id = store.conversation_id(events[0].account_id, customer)
    single = next((e for e in events if e.hydration == ONE_BY_ONE), None)
    try:
        if single is not None or (conversation_id and len(events) == 1):
            return _hydrate_one(single or events[0], account, graph, store, conversation_id)
        if conversation_id is None:
            conversation_id, messages = _first_contact(events[0], account, customer, graph, store)
            if conversation_id is None:
                return _no_conversation(events)
        else:
            messages = _conversation_messages(conversation_id, account, graph, store)
    except GraphPermanent as exc:
        return Outcome(settled=[unavailable(e, f"graph: {exc}", conversation_id) for e in events])
    return _match(events, messages, conversation_id)


def _no_conversation(events: list[Event]) -> Outcome:
    # A brand-new conversation may take a moment to be listed: fresh events ask again.
    fresh = [e for e in events if _not_visible_yet(e, 0)]
    stale = [unavailable(e, "no conversation with this user") for e in events if e not in fresh]
    return Outcome(settled=stale, waiting=fresh)


def _hydrate_one(event: Event, account: Account, graph: GraphClient, store: Store,
                 conversation_id: str | None) -> Outcome:
    conversation_id = conversation_id or event.conversation_id
    try:
        message = _get(graph, store, account, event.mid, {"fields": MESSAGE_FIELDS})
    except GraphPermanent as exc:
        return Outcome(settled=[unavailable(event, f"graph: {exc}", conversation_id)])
    return Outcome(settled=[_complete(event, message, conversation_id)])


def _first_contact(event: Event, account: Account, customer: str, graph: GraphClient,
                   store: Store) -> tuple[str | None, list[dict] | None]:
    params = {"platform": event.platform, "user_id": customer, "fields": f"id,{NESTED}"}
    body = _get(graph, store, account, f"{account.page_id}/conversations", params)
    conversations = body.get("data") or []
    if not conversations:
        return None, None
    conversation = conversations[0]
    store.remember_conversation(event.account_id, customer, conversation["id"])
    return conversation["id"], _nested_messages(conversation)


def _conversation_messages(conversation_id: str, account: Account, graph: GraphClient,
                           store: Store) -> list[dict]:
    body = _get(graph, store, account, conversation_id, {"fields": NESTED})
    return _nested_messages(body)


def _get(graph: GraphClient, store: Store, account: Account, path: str, params: dict) -> dict:
    body, backoff = graph.get(path, token=account.access_token, params=params)
    store.block_calls(account.page_id, backoff)
    return body


def _nested_messages(node: dict) -> list[dict] | None:
    """The nested messages of a conversation node; None if the API left the field out."""
    messages = node.get("messages")
    if not isinstance(messages, dict):
        return None
    return [m for m in messages.get("data") or [] if isinstance(m, dict)]


def _match(events: list[Event], messages: list[dict] | None, conversation_id: str | None) -> Outcome:
    if messages is None:  # no nested messages at all: fetch each message by its id
        return Outcome(one_by_one=[e.replace(conversation_id=conversation_id, hydration=ONE_BY_ONE)
                                   for e in events])
    by_id = {m.get("id"): m for m in messages}
    newest = max((to_millis(m.get("created_time")) or 0 for m in messages), default=0)
    outcome = Outcome()
    for event in events:
        message = by_id.get(event.mid)
        if message is not None and _detailed(message):
            outcome.settled.append(_complete(event, message, conversation_id))
        elif message is not None:
            outcome.one_by_one.append(event.replace(conversation_id=conversation_id, hydration=ONE_BY_ONE))
        elif _not_visible_yet(event, newest):
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
