"""When the Graph API gives no details: the webhook's own data, in the Graph message's shape."""

from __future__ import annotations

from datetime import UTC, datetime

from workers.records import Event


def unavailable(event: Event, reason: str, conversation_id: str | None = None) -> Event:
    """The event delivered with the webhook's own data, saying why the API gave no details."""
    return event.replace(conversation_id=conversation_id or event.conversation_id,
                         message=webhook_message(event), hydration="unavailable",
                         hydration_error=reason)


def webhook_message(event: Event) -> dict:
    """A Graph-shaped message object built from the webhook item alone."""
    raw = event.raw if isinstance(event.raw, dict) else {}
    # An edit's item has `message_edit` instead (with the new text on Messenger, none on Instagram).
    sent = raw.get("message_edit") if event.kind == "message_edit" else raw.get("message")
    body = sent if isinstance(sent, dict) else {}
    created = (datetime.fromtimestamp(event.timestamp / 1000, UTC).isoformat()
               if event.timestamp else None)
    message = {"id": event.mid, "created_time": created, "from": {"id": event.sender_id},
               "to": {"data": [{"id": event.recipient_id}]}, "message": body.get("text", "")}
    if body.get("attachments"):
        message["attachments"] = {"data": body["attachments"]}
    return message
