"""Meta's webhook envelopes into typed events; never raises on odd items."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from workers.records import Event, Hydration, Kind, Platform

PLATFORMS: dict[Any, Platform] = {"page": "messenger", "instagram": "instagram"}
HYDRATED_KINDS = {"message", "echo"}
# messaging item key -> kind; the first key present wins, so `message` is looked at first.
_MESSAGING_KINDS: dict[str, Kind] = {
    "message": "message", "message_edit": "message_edit", "reaction": "reaction",
    "read": "read", "delivery": "delivery", "postback": "postback", "referral": "referral",
    "optin": "optin", "pass_thread_control": "handover", "take_thread_control": "handover",
    "request_thread_control": "handover", "app_roles": "handover",
}


def parse_envelope(envelope: dict) -> list[Event]:
    """Every event of a webhook delivery, in the order Meta sent them; never raises on odd items."""
    platform = PLATFORMS.get(envelope.get("object"))
    events = []
    for entry in envelope.get("entry") or []:
        if not isinstance(entry, dict):
            events.append(_unknown(platform, None, entry))
            continue
        events.extend(_entry_events(platform, entry))
    return events


def _entry_events(platform: str | None, entry: dict) -> Iterator[Event]:
    account_id = _text(entry.get("id"))
    for channel in ("messaging", "standby"):
        for item in _items(entry.get(channel)):
            yield _messaging_event(platform, account_id, item)
    for item in _items(entry.get("changes")):
        yield _change_event(platform, account_id, item)


def _items(value: Any) -> list:
    return value if isinstance(value, list) else []


def _messaging_event(platform: str | None, account_id: str | None, item: Any) -> Event:
    if not isinstance(item, dict):
        return _unknown(platform, account_id, item)
    kind = next((k for key, k in _MESSAGING_KINDS.items() if key in item), "unknown")
    body = item.get(_key_for(kind, item))
    if kind == "message" and isinstance(body, dict) and body.get("is_echo"):
        kind = "echo"
    if platform is None:
        kind = "unknown"
    return _event(kind, platform, account_id, item, sender=_id_of(item.get("sender")),
                  recipient=_id_of(item.get("recipient")), timestamp=item.get("timestamp"),
                  mid=_mid_of(body))


def _key_for(kind: str, item: dict) -> str | None:
    return next((key for key, k in _MESSAGING_KINDS.items() if k == kind and key in item), None)


def _change_event(platform: str | None, account_id: str | None, item: Any) -> Event:
    value = item.get("value") if isinstance(item, dict) else None
    value = value if isinstance(value, dict) else {}
    kind = "change" if platform and isinstance(item, dict) else "unknown"
    return _event(kind, platform, account_id, item, sender=_id_of(value.get("from")),
                  recipient=None, timestamp=value.get("timestamp") or value.get("created_time"),
                  mid=_text(value.get("message_id") or value.get("mid")))


def _unknown(platform: str | None, account_id: str | None, item: Any) -> Event:
    return _event("unknown", platform, account_id, item, sender=None, recipient=None,
                  timestamp=None, mid=None)


def _event(kind, platform, account_id, item, *, sender, recipient, timestamp, mid) -> Event:
    hydration: Hydration = "pending" if kind in HYDRATED_KINDS and mid else "not_applicable"
    return Event(id=event_id(platform, account_id, kind, item), kind=kind, platform=platform,
                 account_id=account_id, sender_id=sender, recipient_id=recipient,
                 timestamp=to_millis(timestamp), mid=mid, conversation_id=None, message=None,
                 hydration=hydration, raw=item)


def event_id(platform: str | None, account_id: str | None, kind: str, item: Any) -> str:
    """A stable idempotency key: the same item delivered twice hashes to the same id."""
    canonical = json.dumps([platform, account_id, kind, item], sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return "evt_" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def to_millis(value: Any) -> int | None:
    """Meta's timestamps as epoch milliseconds: numbers, numeric strings, ISO 8601; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value if value > 1e11 else value * 1000)
    if isinstance(value, str) and value.strip():
        try:
            return to_millis(float(value))
        except ValueError:
            return _iso_millis(value)
    return None


def _iso_millis(value: str) -> int | None:
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError:
        return None


def _id_of(party: Any) -> str | None:
    return _text(party.get("id")) if isinstance(party, dict) else None


def _mid_of(body: Any) -> str | None:
    return _text(body.get("mid")) if isinstance(body, dict) else None


def _text(value: Any) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    return None
