"""The commented configuration `inbox-relay init` writes, and writing it readable by its owner only."""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from workers.crypto import new_key
from workers.settings import MetaSettings

# Placeholders `inbox-relay check` recognises: the file loads, but they are no real secrets.
APP_SECRET_PLACEHOLDER = "REPLACE-with-the-app-secret"
TOKEN_PLACEHOLDER = "REPLACE-with-the-page-access-token"

HEADER = """\
# inbox-relay configuration, written by `inbox-relay init` on {date}.
# Every key is described in README.md ("Configuration"); paths are relative to this file.
# Secrets may come from the environment instead of this file: META_APP_SECRET, META_VERIFY_TOKEN,
# META_PAGE_TOKEN_<page id>, INBOX_RELAY_ENCRYPTION_KEYS. `inbox-relay check` tells what is missing.

[meta]
# The app secret: App Dashboard > App settings > Basic > App secret (or set META_APP_SECRET).
# List several (the Instagram app's too) if more than one app may sign deliveries.
app_secrets   = [{app_secret}]
# Type this same value as the "Verify token" in the App Dashboard's Webhooks settings.
verify_token  = {verify_token}
graph_url     = {graph_url}
graph_version = {graph_version}
"""

ACCOUNT = """
[[accounts]]                                   # one per Facebook Page
page_id      = {page_id}
# instagram_id = "17841400000000000"           # the Page's linked Instagram professional account
# The Page access token (pages_messaging, pages_manage_metadata; for Instagram also
# instagram_basic, instagram_manage_messages). Better kept out of this file: leave the
# placeholder and set META_PAGE_TOKEN_{page_id_bare} in the environment, which wins.
access_token = {token}
"""

NO_ACCOUNTS = """
# One [[accounts]] table per Facebook Page (`inbox-relay init --page-id ID` writes them):
# [[accounts]]
# page_id      = "1234567890"
# access_token = "..."                          # or set META_PAGE_TOKEN_1234567890
"""

REST = """
[queue]
broker_url = ""         # empty: a private Redis in data_dir; or redis://host:6379/0, amqp://...
data_dir   = "./var"    # the inbox, the private Redis and its files

[security]
# Encrypts what inbox-relay stores. Keep a copy of this key somewhere safe: without it the stored
# data cannot be read. Every node of one deployment needs the same keys.
encryption_keys = [{key}]

[console]
listen = "127.0.0.1:8001"   # where `run` serves the web console; "off" turns it off
# Log in with this token (or set INBOX_RELAY_CONSOLE_TOKEN); empty: the console stays off.
token  = {console_token}

[[handlers]]
type = "jsonl"          # one event record per line
path = "./var/events.jsonl"
"""


def render_config(page_ids: list[str], *, verify_token: str | None = None, key: str | None = None) -> str:
    """The configuration text: a new random verify token and encryption key unless given."""
    meta = MetaSettings.model_fields
    text = HEADER.format(date=datetime.now(UTC).strftime("%Y-%m-%d"),
                         app_secret=_quoted(APP_SECRET_PLACEHOLDER),
                         verify_token=_quoted(verify_token or secrets.token_urlsafe(32)),
                         graph_url=_quoted(meta["graph_url"].default),
                         graph_version=_quoted(meta["graph_version"].default))
    for page_id in page_ids:
        text += ACCOUNT.format(page_id=_quoted(page_id), page_id_bare=page_id,
                               token=_quoted(TOKEN_PLACEHOLDER))
    if not page_ids:
        text += NO_ACCOUNTS
    return text + REST.format(key=_quoted(key or new_key()),
                              console_token=_quoted(secrets.token_urlsafe(24)))


def write_private(path: Path, text: str, *, force: bool) -> None:
    """Write `text` to `path` with mode 0600; FileExistsError if it exists and not `force`."""
    if not force:
        _write_new(path, text)
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _write_new(temporary, text)
    os.replace(temporary, path)  # whole, never half-written, and never readable by others


def _write_new(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)  # whatever the umask
        out.write(text)


def _quoted(value: str) -> str:
    """A TOML basic string (JSON's escaping is TOML's for these values)."""
    return json.dumps(value)
