"""What the console's tests share: settings with a console token, an event log seeded in a
tmp_path (SQLite), and logging in through the form as a browser does."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

from workers.crypto import Codec, new_key
from workers.events.database import open_database
from workers.events.log import Attempt, EventLog
from workers.records import Event
from workers.runtime.config import settings_from_dict
from workers.settings import Settings

if TYPE_CHECKING:
    from workers.stage import Runtime

TOKEN = "console-token-for-tests"
HOSTILE = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert('xss')</script>"


def console_settings(tmp_path: Path) -> Settings:
    """Settings with one Page, one handler and a console token."""
    return settings_from_dict({
        "meta": {"app_secrets": ["s"], "verify_token": "v"},
        "accounts": [{"page_id": "P1", "access_token": "t"}],
        "queue": {"data_dir": str(tmp_path)},
        "handlers": [{"type": "log", "name": "crm"}],
        "console": {"token": TOKEN}}, env={})


def message_event(n: int, text: str = "hello") -> Event:
    """A hydrated Messenger message whose text is `text`."""
    return Event(id=f"evt_{n:04d}", kind="message", platform="messenger", account_id="P1",
                 sender_id="c1", recipient_id="P1", timestamp=1_700_000_000_000 + n, mid=f"m_{n}",
                 conversation_id="t_1", message={"id": f"m_{n}", "message": text},
                 hydration="complete",
                 raw={"sender": {"id": "c1"}, "message": {"mid": f"m_{n}", "text": text}})


def seeded_journal(tmp_path: Path, *, plain: int = 3) -> EventLog:
    """A log with `plain` harmless events, a dead-lettered one, and two hostile ones: evt_0900
    (an <img onerror>) and evt_0901 (a <script>)."""
    journal = EventLog(lambda: open_database("", tmp_path), Codec((new_key(),)))
    journal.note_events([message_event(n) for n in range(plain)])
    journal.note_events([message_event(900, HOSTILE), message_event(901, SCRIPT)])
    journal.note_attempt(Attempt("evt_0000", "crm", 1, "dead_letter", error="HandlerRejected: 400"))
    journal.note_attempt(Attempt("evt_0900", "crm", 1, "success", duration_ms=4.0))
    journal.flush()
    return journal


def handlerless_runtime() -> Runtime:
    """A Runtime stand-in with no handler: replay refuses every name, as a real one would."""
    return cast("Runtime", SimpleNamespace(handlers={}, journal=None))


def csrf_of(html: str) -> str:
    """The CSRF token a page's form carries."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no form with a CSRF token"
    return match[1]


def log_in(client, token: str = TOKEN, **headers: str):
    """GET the login page, POST the token with its CSRF token; the POST's response."""
    page = client.get("/console/login", headers=headers)
    return client.post("/console/login", data={"token": token, "csrf_token": csrf_of(page.text)},
                       headers=headers)
