"""The local durable inbox: every accepted delivery, in SQLite (WAL), until the broker has it."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

INBOX_FILE = "inbox.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    body BLOB NOT NULL,
    claimed_by TEXT,
    claimed_until REAL,
    published_at REAL,
    force INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS unpublished ON deliveries(id) WHERE published_at IS NULL;
CREATE TABLE IF NOT EXISTS relay_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Delivery:
    """One received webhook delivery as recorded."""

    id: int
    received_at: float
    body: bytes
    published_at: float | None
    force: bool = False


class Inbox:
    """Append deliveries durably; let relays claim, publish and mark them; list and replay."""

    def __init__(self, path: Path, *, synchronous: str = "FULL"):
        self.path = Path(path)
        self.synchronous = synchronous
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._db() as db:
            db.executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            # FULL (the default): a committed delivery is on disk before we answer 200.
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            self._local.db = db
        return db

    def append(self, body: bytes, *, force: bool = False) -> int:
        """Record a delivery; when this returns, it survives a crash."""
        cursor = self._db().execute(
            "INSERT INTO deliveries (received_at, body, force) VALUES (?, ?, ?)",
            (time.time(), body, int(force)))
        assert cursor.lastrowid is not None  # an INSERT into a rowid table always sets it
        return cursor.lastrowid

    def claim(self, owner: str, *, limit: int = 100, lease: float = 10.0) -> list[Delivery]:
        """Take up to `limit` unpublished deliveries for `lease` seconds, oldest first."""
        now = time.time()
        rows = self._db().execute(
            "UPDATE deliveries SET claimed_by = ?, claimed_until = ? WHERE id IN ("
            " SELECT id FROM deliveries WHERE published_at IS NULL"
            " AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT ?)"
            " RETURNING id, received_at, body, published_at, force",
            (owner, now + lease, now, limit)).fetchall()
        return sorted((Delivery(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows), key=lambda d: d.id)

    def mark_published(self, delivery_ids: list[int]) -> None:
        """The broker has these deliveries."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")  # one commit for the batch, not one per row
        try:
            db.executemany("UPDATE deliveries SET published_at = ? WHERE id = ?",
                           [(time.time(), i) for i in delivery_ids])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def release(self, owner: str) -> None:
        """Give back what `owner` claimed but did not publish, so that it is tried again at once."""
        self._db().execute("UPDATE deliveries SET claimed_until = NULL WHERE claimed_by = ?"
                           " AND published_at IS NULL", (owner,))

    def republish_since(self, since: float) -> int:
        """Publish again what was published after `since` (epoch seconds): the broker lost it."""
        return self._db().execute("UPDATE deliveries SET published_at = NULL, claimed_until = NULL"
                                  " WHERE published_at >= ?", (since,)).rowcount

    def state(self, key: str) -> str | None:
        """A value the relay keeps across restarts."""
        row = self._db().execute("SELECT value FROM relay_state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        """Keep a value across restarts."""
        self._db().execute("INSERT OR REPLACE INTO relay_state (key, value) VALUES (?, ?)", (key, value))

    def unpublished_count(self) -> int:
        """How many deliveries wait for the broker."""
        return self._db().execute(
            "SELECT COUNT(*) FROM deliveries WHERE published_at IS NULL").fetchone()[0]

    def list(self, *, limit: int = 50, since: float | None = None) -> list[Delivery]:
        """The newest deliveries first."""
        rows = self._db().execute(
            "SELECT id, received_at, body, published_at, force FROM deliveries"
            " WHERE received_at >= ? ORDER BY id DESC LIMIT ?", (since or 0, limit)).fetchall()
        return [Delivery(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def get(self, delivery_id: int) -> Delivery | None:
        """One delivery by id."""
        row = self._db().execute("SELECT id, received_at, body, published_at, force FROM deliveries"
                                 " WHERE id = ?", (delivery_id,)).fetchone()
        return Delivery(row[0], row[1], row[2], row[3], bool(row[4])) if row else None

    def prune(self, *, older_than: float) -> int:
        """Forget published deliveries received before `older_than` (epoch seconds)."""
        cursor = self._db().execute("DELETE FROM deliveries WHERE published_at IS NOT NULL"
                                    " AND received_at < ?", (older_than,))
        return cursor.rowcount
