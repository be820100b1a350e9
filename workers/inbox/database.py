"""The local durable inbox: every accepted delivery, in SQLite (WAL), until the broker has it."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workers.crypto import Codec
from workers.errors import InboxDamaged
from workers.inbox import forks
from workers.inbox.schema import FIELDS, Arrival, Delivery, create_or_migrate, delivery_of

INBOX_FILE = "inbox.sqlite3"
STILL_FAILED = "failed_at IS NOT NULL AND replayed_as IS NULL"


class Inbox:
    """Append deliveries durably; let relays claim, publish and mark them; list and replay."""

    def __init__(self, path: Path, *, synchronous: str = "FULL"):
        self.path = Path(path)
        self.synchronous = synchronous
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection per process, shared by its threads (or greenlets) under a lock: SQLite
        # serialises writers anyway, and a connection per greenlet would reopen on every request.
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        forks.watch(self)
        try:
            self._create()
        except sqlite3.DatabaseError as exc:
            raise InboxDamaged.of(self.path, str(exc)) from None

    def _create(self) -> None:
        with self._db() as db:
            create_or_migrate(db)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None or self._pid != os.getpid():  # a child forked in mid-use opens its own
                self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                             check_same_thread=False)
                self._conn.execute("PRAGMA journal_mode=WAL")
                # FULL (the default): a committed delivery is on disk before we answer 200.
                self._conn.execute(f"PRAGMA synchronous={self.synchronous}")
                self._pid = os.getpid()
            yield self._conn

    def suspend_for_fork(self) -> None:
        """Wait for the current user, then close the connection (see workers.inbox.forks)."""
        self._lock.acquire()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def resume_after_fork(self) -> None:
        """Let users in again; the next opens a new connection."""
        self._lock.release()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed if the block ends normally, else rolled back."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # a failed COMMIT too: never leave the write lock held
                    db.execute("ROLLBACK")
                raise

    def append(self, body: bytes, *, force: bool = False, api_version: str | None = None) -> int:
        """Record a delivery; when this returns, it survives a crash."""
        return self.append_many([body], force=force, api_versions=[api_version])[0]

    def append_many(self, bodies: list[bytes], *, force: bool = False, replaying: int | None = None,
                    api_versions: list[str | None] | None = None) -> list[int]:
        """Record deliveries in one transaction (one fsync); their ids, in order. `api_versions`,
        when given, holds each body's Facebook-API-Version header (or None), in the same order."""
        now = time.time()
        versions = api_versions if api_versions is not None else [None] * len(bodies)
        with self._write() as db:
            ids = [int(db.execute("INSERT INTO deliveries (received_at, body, force, api_version)"
                                  " VALUES (?, ?, ?, ?)", (now, body, int(force), version)).lastrowid or 0)
                   for body, version in zip(bodies, versions, strict=True)]
            if replaying is not None:  # the failed original is the replay's business: no longer failed
                db.execute("UPDATE deliveries SET replayed_as = ? WHERE id = ?", (ids[0], replaying))
            return ids

    def append_arrivals(self, arrivals: list[Arrival]) -> list[int]:
        """`append_many` for what the web edge received: bodies with their API versions."""
        return self.append_many([a.body for a in arrivals], api_versions=[a.api_version for a in arrivals])

    def claim(self, owner: str, *, limit: int = 100, lease: float = 10.0) -> list[Delivery]:
        """Take up to `limit` unpublished deliveries for `lease` seconds, oldest first."""
        now = time.time()
        with self._write() as db:
            rows = db.execute(
                "UPDATE deliveries SET claimed_by = ?, claimed_until = ? WHERE id IN ("
                " SELECT id FROM deliveries WHERE published_at IS NULL"
                " AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT ?)"
                f" RETURNING {FIELDS}", (owner, now + lease, now, limit)).fetchall()
        return sorted((delivery_of(r) for r in rows), key=lambda d: d.id)

    def mark_published(self, delivery_ids: list[int]) -> None:
        """The broker has these deliveries (one commit for the batch, not one per row)."""
        self._many("UPDATE deliveries SET published_at = ? WHERE id = ?",
                   [(time.time(), i) for i in delivery_ids])

    def mark_failed(self, failures: list[tuple[int, str]]) -> None:
        """These deliveries could not be processed: keep them, with why, for a replay after a fix.

        Marked published too, so that the relay moves on; `deliveries replay` sends them again.
        """
        now = time.time()
        self._many("UPDATE deliveries SET failed_at = ?, error = ?,"
                   " published_at = COALESCE(published_at, ?) WHERE id = ?",
                   [(now, error[:1000], now, i) for i, error in failures])

    def _many(self, statement: str, rows: list[tuple]) -> None:
        with self._write() as db:
            db.executemany(statement, rows)

    def release(self, owner: str) -> None:
        """Give back what `owner` claimed but did not publish, so that it is tried again at once."""
        with self._write() as db:
            db.execute("UPDATE deliveries SET claimed_until = NULL WHERE claimed_by = ?"
                       " AND published_at IS NULL", (owner,))

    def republish_since(self, since: float) -> int:
        """Publish again what was published after `since` (epoch seconds): the broker lost it."""
        with self._write() as db:
            return db.execute("UPDATE deliveries SET published_at = NULL, claimed_until = NULL"
                              " WHERE published_at >= ? AND failed_at IS NULL", (since,)).rowcount

    def state(self, key: str) -> str | None:
        """A value the relay keeps across restarts."""
        with self._db() as db:
            row = db.execute("SELECT value FROM relay_state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        """Keep a value across restarts."""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO relay_state (key, value) VALUES (?, ?)", (key, value))

    def high_id(self) -> int:
        """The highest delivery id this inbox ever gave (kept by SQLite across deletes)."""
        with self._db() as db:
            row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'").fetchone()
        return int(row[0]) if row else 0

    def counts(self) -> dict[str, int]:
        """How many deliveries wait for the broker, and how many failed."""
        with self._db() as db:
            waiting, failed = db.execute("SELECT COUNT(*) FILTER (WHERE published_at IS NULL), COUNT(*)"
                                         f" FILTER (WHERE {STILL_FAILED}) FROM deliveries").fetchone()
        return {"unpublished": waiting, "failed": failed}

    def unconfirmed(self, *, published_before: float, published_after: float,
                    limit: int = 500) -> list[int]:
        """Published deliveries no worker has confirmed yet (nor failed), oldest first."""
        with self._db() as db:
            rows = db.execute("SELECT id FROM deliveries WHERE confirmed_at IS NULL AND failed_at IS NULL"
                              " AND published_at BETWEEN ? AND ? ORDER BY id LIMIT ?",
                              (published_after, published_before, limit)).fetchall()
        return [row[0] for row in rows]

    def mark_confirmed(self, delivery_ids: list[int]) -> None:
        """Workers took these in."""
        self._many("UPDATE deliveries SET confirmed_at = ? WHERE id = ?",
                   [(time.time(), i) for i in delivery_ids])

    def republish(self, delivery_ids: list[int]) -> None:
        """Publish these again: the broker lost them."""
        self._many("UPDATE deliveries SET published_at = NULL, claimed_until = NULL WHERE id = ?",
                   [(i,) for i in delivery_ids])

    def oldest_unpublished(self) -> float | None:
        """When the oldest delivery still waiting for the broker was received (epoch seconds)."""
        with self._db() as db:
            row = db.execute("SELECT MIN(received_at) FROM deliveries WHERE published_at IS NULL").fetchone()
        return row[0] if row else None

    def list(self, *, limit: int = 50, since: float | None = None,
             failed: bool = False) -> list[Delivery]:
        """The newest deliveries first (only failed ones if `failed`)."""
        only_failed = f" AND {STILL_FAILED}" if failed else ""
        with self._db() as db:
            rows = db.execute(f"SELECT {FIELDS} FROM deliveries WHERE received_at >= ?{only_failed}"
                              " ORDER BY id DESC LIMIT ?", (since or 0, limit)).fetchall()
        return [delivery_of(r) for r in rows]

    def get(self, delivery_id: int) -> Delivery | None:
        """One delivery by id."""
        with self._db() as db:
            row = db.execute(f"SELECT {FIELDS} FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return delivery_of(row) if row else None

    def reseal(self, codec: Codec) -> int:
        """Encrypt every body again under the codec's first key (rotate-keys); returns how many."""
        with self._db() as db:
            rows = db.execute("SELECT id, body FROM deliveries").fetchall()
        self._many("UPDATE deliveries SET body = ? WHERE id = ?",
                   [(codec.reseal(body, what=f"inbox delivery {i}"), i) for i, body in rows])
        return len(rows)

    def prune(self, *, older_than: float) -> int:
        """Forget published deliveries received before `older_than` (epoch seconds)."""
        with self._write() as db:
            return db.execute("DELETE FROM deliveries WHERE published_at IS NOT NULL"
                              " AND received_at < ?", (older_than,)).rowcount
