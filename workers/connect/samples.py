"""Test deliveries built as Meta builds them: ids and mids of Meta's shapes, millisecond timestamps,
text with non-ASCII characters, serialised with non-ASCII escaped as \\uXXXX and "/" as "\\/", signed
with X-Hub-Signature-256 (and the older X-Hub-Signature)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

KINDS = ("text", "attachment", "echo", "reaction", "read", "postback", "edit", "delete", "batch")
PLATFORMS = ("messenger", "instagram")
OBJECTS = {"messenger": "page", "instagram": "instagram"}
TEXT = "Grüße aus Köln! Ça va? Привет, 你好 👋 (test from inbox-relay)"
REPLY = "Danke, wir melden uns gleich — merci ✨"
IMAGE_URLS = {
    "messenger": "https://scontent.xx.fbcdn.net/v/t1.15752-9/449711215_100829187_734871359_n.jpg"
                 "?_nc_cat=1&ccb=1-7&_nc_sid=fc17b8&oh=00_AYBx0&oe=66A1B2C3",
    "instagram": "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=18041236521797354"
                 "&signature=AbzW7kJ3Qv9d",
}
PAGE_INBOX_APP_ID = 263902037430900  # the app Meta names as the sender of replies typed in the Page inbox


def build_delivery(kind: str, platform: str, account_id: str, *, now_ms: int | None = None) -> dict:
    """One webhook delivery of `kind` for the account (`entry.id`: page id or Instagram id)."""
    if kind not in KINDS or platform not in PLATFORMS:
        raise ValueError(f"unknown kind or platform: {kind}, {platform}")
    now = now_ms or int(time.time() * 1000)
    user = _user_id()
    if kind == "batch":  # several entries, several items each, as Meta batches busy pages
        other = _user_id()
        entries = [_entry(account_id, now, [_item("text", platform, account_id, user, now),
                                            _item("reaction", platform, account_id, user, now + 1)]),
                   _entry(account_id, now + 2, [_item("read", platform, account_id, other, now + 2),
                                                _item("postback", platform, account_id, other, now + 2)])]
    else:
        entries = [_entry(account_id, now, [_item(kind, platform, account_id, user, now)])]
    return {"object": OBJECTS[platform], "entry": entries}


def known_text(platform: str, account_id: str, *, mid: str, user: str, text: str) -> dict:
    """The delivery of a text message that the Graph API knows (its mid and sender), as the
    playground's stand-in makes them: hydration finds its details."""
    now = int(time.time() * 1000)
    item = {"sender": {"id": user}, "recipient": {"id": account_id}, "timestamp": now,
            "message": {"mid": mid, "text": text}}
    return {"object": OBJECTS[platform], "entry": [_entry(account_id, now, [item])]}


def _entry(account_id: str, time_ms: int, items: list[dict]) -> dict:
    return {"id": account_id, "time": time_ms, "messaging": items}


def _item(kind: str, platform: str, account_id: str, user: str, ms: int) -> dict:
    if kind == "echo":
        return {"sender": {"id": account_id}, "recipient": {"id": user}, "timestamp": ms,
                "message": _echo(platform, account_id)}
    base: dict[str, Any] = {"sender": {"id": user}, "recipient": {"id": account_id}, "timestamp": ms}
    return {**base, **_body(kind, platform, account_id, ms)}


def _body(kind: str, platform: str, account_id: str, ms: int) -> dict:
    mid = new_mid(platform, account_id)
    bodies: dict[str, dict] = {
        "text": {"message": {"mid": mid, "text": TEXT}},
        "attachment": {"message": {"mid": mid, "attachments": [
            {"type": "image", "payload": {"url": IMAGE_URLS[platform]}}]}},
        "reaction": {"reaction": {"mid": mid, "action": "react", "reaction": "love", "emoji": "❤️"}},
        "read": ({"read": {"watermark": ms - 1000}} if platform == "messenger"
                 else {"read": {"mid": mid}}),
        "postback": {"postback": {"mid": mid, "title": "Öffnungszeiten", "payload": "OPENING_HOURS"}},
        "edit": {"message_edit": {"mid": mid, "text": TEXT + " (édité)", "num_edit": 1}},
        "delete": {"message": {"mid": mid, "is_deleted": True}},  # an unsend, as Instagram sends it
    }
    return bodies[kind]


def _echo(platform: str, account_id: str) -> dict:
    message: dict[str, Any] = {"mid": new_mid(platform, account_id), "is_echo": True, "text": REPLY}
    if platform == "messenger":
        message["app_id"] = PAGE_INBOX_APP_ID
    return message


def new_mid(platform: str, account_id: str) -> str:
    """A message id shaped like Meta's: `m_` and 86 URL-safe characters on Messenger; base64 of an
    `ig_message_item` key on Instagram."""
    if platform == "messenger":
        return "m_" + base64.urlsafe_b64encode(secrets.token_bytes(64)).decode().rstrip("=")
    key = f"ig_message_item:1:IGMessageThread:{account_id}:{secrets.randbits(120)}"
    return base64.b64encode(key.encode()).decode().rstrip("=")


def _user_id() -> str:
    """A page- or Instagram-scoped user id: 16 or 17 digits."""
    return str(secrets.randbelow(9 * 10**16) + 10**15)


def wire_bytes(envelope: dict) -> bytes:
    """The body as Meta serialises it: compact, non-ASCII as \\uXXXX, "/" as "\\/"."""
    text = json.dumps(envelope, ensure_ascii=True, separators=(",", ":"))
    return text.replace("/", "\\/").encode("ascii")  # "/" only ever occurs inside JSON strings


def signed_headers(app_secret: str, body: bytes, *, api_version: str | None = None) -> dict[str, str]:
    """The headers Meta sends with a delivery, signed with the app secret; with `api_version`,
    the Facebook-API-Version its payload was built with, as every delivery of Meta's carries."""
    sha256 = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    sha1 = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha1).hexdigest()
    headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua",
               "X-Hub-Signature": f"sha1={sha1}", "X-Hub-Signature-256": f"sha256={sha256}"}
    if api_version:
        headers["Facebook-API-Version"] = api_version
    return headers
