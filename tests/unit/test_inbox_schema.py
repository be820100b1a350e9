"""The inbox's schema across releases: an inbox file an earlier release made opens and gains the
columns added since, and each delivery keeps its Facebook-API-Version (in the clear, beside the
sealed body) through replay and salvage."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from tests.harness import present
from workers.crypto import Codec, new_key
from workers.inbox import deliveries
from workers.inbox.database import Inbox
from workers.inbox.salvage import salvage

# The table as the release before `api_version` made it, word for word.
EARLIER_RELEASE = """
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    body BLOB NOT NULL,
    claimed_by TEXT,
    claimed_until REAL,
    published_at REAL,
    force INTEGER NOT NULL DEFAULT 0
, failed_at REAL, error TEXT, confirmed_at REAL, replayed_as INTEGER);
CREATE INDEX unpublished ON deliveries(id) WHERE published_at IS NULL;
CREATE TABLE relay_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO deliveries (received_at, body, force) VALUES (1700000000.0, CAST('{"entry": []}' AS BLOB), 0);
"""


def _earlier_inbox(path: Path) -> Path:
    with closing(sqlite3.connect(path)) as db:
        db.executescript(EARLIER_RELEASE)
    return path


def _columns(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        return {row[1] for row in db.execute("PRAGMA table_info(deliveries)")}


def test_an_inbox_an_earlier_release_made_opens_and_gains_the_api_version_column(tmp_path):
    path = _earlier_inbox(tmp_path / "inbox.sqlite3")
    assert "api_version" not in _columns(path)
    inbox = Inbox(path)
    assert "api_version" in _columns(path)
    [old] = inbox.list()
    assert old.body == b'{"entry": []}' and old.api_version is None, "its rows read, without a version"
    new = inbox.append(b'{"entry": [1]}', api_version="v27.0")
    assert present(inbox.get(new)).api_version == "v27.0"
    assert [d.id for d in inbox.claim("relay")] == [old.id, new], "both wait for the broker, in order"


def test_opening_an_inbox_again_changes_nothing(tmp_path):
    path = tmp_path / "inbox.sqlite3"
    first = Inbox(path).append(b"{}", api_version="v26.0")
    assert present(Inbox(path).get(first)).api_version == "v26.0"


def test_the_version_is_kept_in_the_clear_beside_the_sealed_body(tmp_path):
    codec = Codec((new_key(),))
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    [delivery_id] = inbox.append_many([codec.seal(b'{"entry": []}')], api_versions=["v27.0"])
    with closing(sqlite3.connect(inbox.path)) as db:
        body, version = db.execute("SELECT body, api_version FROM deliveries").fetchone()
    assert b"entry" not in body and version == "v27.0"
    assert deliveries.list_deliveries(inbox, codec)[0].api_version == "v27.0"
    assert present(inbox.get(delivery_id)).api_version == "v27.0"


def test_a_replay_keeps_the_version_of_the_delivery_it_repeats(tmp_path):
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    original = inbox.append(b'{"entry": []}', api_version="v27.0")
    replayed = present(inbox.get(deliveries.replay_delivery(inbox, original)))
    assert replayed.force and replayed.api_version == "v27.0"


def test_salvage_reads_an_inbox_an_earlier_release_made(tmp_path):
    damaged = _earlier_inbox(tmp_path / "old.sqlite3")  # never opened by this release
    result = salvage(damaged, tmp_path / "new.sqlite3")
    assert (result.read, result.unreadable) == (1, 0)
    [row] = Inbox(tmp_path / "new.sqlite3").list()
    assert row.body == b'{"entry": []}' and row.api_version is None


def test_salvage_keeps_the_version(tmp_path):
    source = Inbox(tmp_path / "old.sqlite3")
    source.append(b'{"entry": []}', api_version="v27.0")
    salvage(source.path, tmp_path / "new.sqlite3")
    assert [d.api_version for d in Inbox(tmp_path / "new.sqlite3").list()] == ["v27.0"]
