"""Graph API messages as events: what a sync or sweep hands to the handlers."""

from __future__ import annotations

from typing import Any

from workers.ingest.parse import event_id
from workers.records import Event, Kind, Platform, Source
from workers.settings import Account
from workers.times import to_millis

BEYOND_NEWEST = "not among the 20 newest messages of its conversation"


def message_event(message: dict, *, account: Account, platform: Platform, conversation_id: str,
                  source: Source) -> Event:
    """The event of one message read from a conversation (detailed, or id and time only)."""
    account_id = account.instagram_id if platform == "instagram" else account.page_id
    sender = _id(message.get("from"))
    kind: Kind = "echo" if sender in (account.page_id, account.instagram_id) else "message"
    recipients = (message.get("to") or {}).get("data") or [{}]
    detailed = "from" in message or "message" in message
    mid = str(message.get("id"))
    return Event(
        # The id hangs on the message id alone, so a second sync or sweep gives the same id.
        id=event_id(platform, account_id, kind, {"graph_message": mid}), kind=kind,
        platform=platform, account_id=account_id, sender_id=sender,
        recipient_id=_id(recipients[0]), timestamp=to_millis(message.get("created_time")),
        mid=mid, conversation_id=conversation_id, message=message,
        hydration="complete" if detailed else "unavailable",
        hydration_error=None if detailed else BEYOND_NEWEST, raw=message, source=source)


def _id(party: Any) -> str | None:
    return str(party["id"]) if isinstance(party, dict) and party.get("id") else None


def customer_of(conversation: dict, account: Account) -> str | None:
    """The other participant of a conversation node (from its messages' senders and recipients)."""
    ours = {account.page_id, account.instagram_id}
    messages = ((conversation.get("messages") or {}).get("data")) or []
    for message in messages:
        for party in [message.get("from"), *((message.get("to") or {}).get("data") or [])]:
            found = _id(party)
            if found and found not in ours:
                return found
    return None
