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
GRACE_MS = 10_000
BEYOND_NEWEST = "not among the 20 newest messages of its conversation"


@dataclass
class Outcome:
    """What one hydration call settled, and what must wait for a later call."""

    settled: list[Event] = field(default_factory=list)
    waiting: list[Event] = field(default_factory=list)


def hydrate_thread(events: list[Event], account: Account, *, graph: GraphClient,
                   store: Store) -> Outcome:
    """Hydrate pending message events of one conversation with a single Graph call."""
    customer = events[0].customer_id or ""
    conversation_id = store.conversation_id(events[0].account_id, customer)
    try:
        if conversation_id is None:
            conversation_id, messages = _first_contact(events[0], account, customer, graph, store)
        elif len(events) == 1:
            messages = _one_message(events[0], account, graph, store)
        else:
            messages = _conversation_messages(conversation_id, account, graph, store)
    except GraphPermanent as exc:
        return Outcome(settled=[unavailable(e, f"graph: {exc}", conversation_id) for e in events])
    return _match(events, messages, conversation_id)


def _first_contact(event: Event, account: Account, customer: str, graph: GraphClient,
                   store: Store) -> tuple[str | None, list[dict]]:
    params = {"platform": event.platform, "user_id": customer, "fields": f"id,{NESTED}"}
    body = _get(graph, store, account, f"{account.page_id}/conversations", params)
    conversations = body.get("data") or []
    if not conversations:
        raise GraphPermanent("no conversation with this user")
    conversation = conversations[0]
    store.remember_conversation(event.account_id, customer, conversation["id"])
    return conversation["id"], _nested_messages(conversation)


def _one_message(event: Event, account: Account, graph: GraphClient, store: Store) -> list[dict]:
    return [_get(graph, store, account, event.mid, {"fields": MESSAGE_FIELDS})]


def _conversation_messages(conversation_id: str, account: Account, graph: GraphClient,
                           store: Store) -> list[dict]:
    body = _get(graph, store, account, conversation_id, {"fields": NESTED})
    return _nested_messages(body)


def _get(graph: GraphClient, store: Store, account: Account, path: str, params: dict) -> dict:
    body, backoff = graph.get(path, token=account.access_token, params=params)
    store.block_calls(account.page_id, backoff)
    return body


def _nested_messages(node: dict) -> list[dict]:
    messages = node.get("messages") or {}
    return [m for m in messages.get("data") or [] if isinstance(m, dict)]


def _match(events: list[Event], messages: list[dict], conversation_id: str | None) -> Outcome:
    by_id = {m.get("id"): m for m in messages}
    newest = max((to_millis(m.get("created_time")) or 0 for m in messages), default=0)
    outcome = Outcome()
    for event in events:
        message = by_id.get(event.mid)
        if message is not None:
            outcome.settled.append(event.replace(conversation_id=conversation_id, message=message,
                                                 hydration="complete"))
        elif _not_visible_yet(event, newest):
            outcome.waiting.append(event)
        else:
            outcome.settled.append(unavailable(event, BEYOND_NEWEST, conversation_id))
    return outcome


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
