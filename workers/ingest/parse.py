"""Meta's webhook envelopes into typed events; never raises on odd items."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from workers.records import Event, Hydration, Kind, Platform
from workers.times import to_millis

PLATFORMS: dict[Any, Platform] = {"page": "messenger", "instagram": "instagram"}
# An edit is read like a message: Instagram's carries no text, and the Graph message has it as edited.
HYDRATED_KINDS = {"message", "echo", "message_edit"}
# messaging item key -> kind; the first key present wins, so `message` is looked at first.
_MESSAGING_KINDS: dict[str, Kind] = {
    "message": "message", "message_edit": "message_edit", "reaction": "reaction",
    "read": "read", "delivery": "delivery", "postback": "postback", "referral": "referral",
    "optin": "optin", "pass_thread_control": "handover", "take_thread_control": "handover",
    "request_thread_control": "handover", "app_roles": "handover",
}


CHANNELS = ("messaging", "standby", "changes")
MAX_DEPTH = 64  # what the web edge accepts; deeper items are cut when hashed


def parse_envelope(envelope: Any, *, api_version: str | None = None) -> list[Event]:
    """Every event of a webhook delivery, in the order Meta sent them; takes any JSON value and
    never raises: what it cannot read becomes kind `unknown`, with the raw item kept.
    `api_version` (the delivery's Facebook-API-Version header) is set on every event."""
    if not isinstance(envelope, dict):
        return []
    kind = envelope.get("object")
    platform = PLATFORMS.get(kind) if isinstance(kind, str) else None
    events: list[Event] = []
    for entry in _items(envelope.get("entry")):
        if isinstance(entry, dict) and any(channel in entry for channel in CHANNELS):
            events.extend(_entry_events(platform, entry))
        else:  # not an entry we know how to read: keep it whole
            events.append(_unknown(platform, _id_of(entry), entry))
    # Not part of the id: the same item sent under another version is still the same event.
    return [event.replace(api_version=api_version) for event in events] if api_version else events


def _entry_events(platform: Platform | None, entry: dict) -> Iterator[Event]:
    account_id = _text(entry.get("id"))
    for channel in ("messaging", "standby"):
        for item in _items(entry.get(channel)):
            yield _messaging_event(platform, account_id, item)
    for item in _items(entry.get("changes")):
        yield _change_event(platform, account_id, item)


def _items(value: Any) -> list:
    """A list as it is; a lone value as a list of one, so that it is delivered (as unknown)."""
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _messaging_event(platform: Platform | None, account_id: str | None, item: Any) -> Event:
    if not isinstance(item, dict):
        return _unknown(platform, account_id, item)
    kind: Kind = next((k for key, k in _MESSAGING_KINDS.items() if key in item), "unknown")
    body = item.get(_key_for(kind, item))
    if kind == "message" and isinstance(body, dict):
        kind = _message_kind(body)
    if platform is None:
        kind = "unknown"
    return _event(kind, platform, account_id, item, sender=_id_of(item.get("sender")),
                  recipient=_id_of(item.get("recipient")), timestamp=item.get("timestamp"),
                  mid=_mid_of(body))


def _message_kind(body: dict) -> Kind:
    """An unsend (Instagram sends it as the message with `is_deleted`) before an echo: a handler
    must delete its copy, whoever sent the message."""
    if body.get("is_deleted") is True:
        return "message_delete"
    return "echo" if body.get("is_echo") else "message"


def _key_for(kind: str, item: dict) -> str | None:
    return next((key for key, k in _MESSAGING_KINDS.items() if k == kind and key in item), None)


def _change_event(platform: Platform | None, account_id: str | None, item: Any) -> Event:
    value = item.get("value") if isinstance(item, dict) else None
    value = value if isinstance(value, dict) else {}
    kind: Kind = "change" if platform and isinstance(item, dict) else "unknown"
    return _event(kind, platform, account_id, item, sender=_id_of(value.get("from")),
                  recipient=None, timestamp=value.get("timestamp") or value.get("created_time"),
                  mid=_text(value.get("message_id") or value.get("mid")))


def _unknown(platform: Platform | None, account_id: str | None, item: Any) -> Event:
    return _event("unknown", platform, account_id, item, sender=None, recipient=None,
                  timestamp=None, mid=None)


def _event(kind: Kind, platform: Platform | None, account_id: str | None, item: Any, *,
           sender: str | None, recipient: str | None, timestamp: Any, mid: str | None) -> Event:
    hydration: Hydration = "pending" if kind in HYDRATED_KINDS and mid else "not_applicable"
    return Event(id=event_id(platform, account_id, kind, item), kind=kind, platform=platform,
                 account_id=account_id, sender_id=sender, recipient_id=recipient,
                 timestamp=to_millis(timestamp), mid=mid, conversation_id=None, message=None,
                 hydration=hydration, raw=item)


def event_id(platform: str | None, account_id: str | None, kind: str, item: Any) -> str:
    """A stable idempotency key: the same item delivered twice hashes to the same id."""
    try:
        canonical = _canonical([platform, account_id, kind, item])
    except RecursionError:  # nested deeper than Python recurses: hash what can be read
        canonical = _canonical([platform, account_id, kind, _clip(item, MAX_DEPTH)])
    # surrogatepass: a lone "\ud800" in Meta's JSON is a valid escape, not a reason to fail.
    return "evt_" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _clip(value: Any, depth: int) -> Any:
    """`value` with whatever lies deeper than `depth` levels replaced by null."""
    if depth <= 0:
        return None
    if isinstance(value, dict):
        return {key: _clip(item, depth - 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_clip(item, depth - 1) for item in value]
    return value


def _id_of(party: Any) -> str | None:
    return _text(party.get("id")) if isinstance(party, dict) else None


def _mid_of(body: Any) -> str | None:
    return _text(body.get("mid")) if isinstance(body, dict) else None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        # Ids become Redis keys: a lone surrogate (valid as a JSON escape) would not encode.
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**30:
        return str(value)  # ids Meta sent as numbers; a longer number is no id
    return None
