"""The event log: every event that reaches its handlers, with what each handler made of it.

Writes are gathered in memory and written in one transaction at the end of each task (`flush`),
after the handlers had their events: the log never holds an event back. A log that cannot be
written is counted (`inbox_relay_event_log_errors_total`), logged once per outage, and its rows
stay gathered (up to MAX_PENDING) for the next flush. The record is sealed with the encryption
keys; ids, kinds, times and outcomes are plain columns, for the filters.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from workers.crypto import Codec
from workers.errors import RelayError, raised_in
from workers.events.database import Database, EventLogUnavailable
from workers.metrics import EVENT_LOG_ERRORS
from workers.records import Event

log = logging.getLogger(__name__)
MAX_PENDING = 50_000   # rows kept for a log that cannot be written; beyond, the oldest are dropped
PRUNE_BATCH = 1_000    # rows removed per statement: short transactions beside the writers
RETRY_AFTER = 15.0     # seconds a log that refused a batch is left alone: tasks' ends do not wait on it
Outcome = str          # success, retry, dead_letter, pending (a replay asked for)

UPSERT_EVENT = """INSERT INTO events (id, kind, platform, account_id, mid, conversation_id, source,
    hydration, received_at, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET conversation_id = excluded.conversation_id,
    hydration = excluded.hydration, record = excluded.record"""
INSERT_ATTEMPT = """INSERT INTO attempts (event_id, handler, attempt, at, outcome, error, duration_ms)
    VALUES (?, ?, ?, ?, ?, ?, ?)"""


@dataclass(frozen=True)
class Attempt:
    """One handler's go at one event."""

    event_id: str
    handler: str
    attempt: int
    outcome: Outcome
    error: str | None = None
    duration_ms: float | None = None
    at: float = 0.0


class EventLog:
    """Gathers rows and writes them in batches; reads for `events list|show` and the console."""

    def __init__(self, open_database: Callable[[], Database], codec: Codec):
        self._open: Callable[[], Database] = open_database
        self._db: Database | None = None
        self.codec = codec
        self._lock = threading.Lock()
        self._events: dict[str, tuple] = {}
        self._attempts: list[tuple] = []
        self._failing = False
        self._quiet_until = 0.0

    def database(self) -> Database:
        """The database, opened (and migrated) on first use."""
        if self._db is None:
            self._db = self._open()
        return self._db

    def note_events(self, events: Iterable[Event]) -> None:
        """Gather events handed to their handlers (the latest record of an id wins)."""
        now = time.time()
        with self._lock:
            for event in events:
                sealed = self.codec.seal_text(json.dumps(event.to_dict(), ensure_ascii=False))
                self._events[event.id] = (event.id, event.kind, event.platform, event.account_id, event.mid,
                                          event.conversation_id, event.source, event.hydration, now, sealed)

    def note_attempt(self, attempt: Attempt) -> None:
        """Gather one handler attempt."""
        with self._lock:
            self._attempts.append((attempt.event_id, attempt.handler, attempt.attempt,
                                   attempt.at or time.time(), attempt.outcome, attempt.error,
                                   attempt.duration_ms))
            del self._attempts[:-MAX_PENDING]

    def flush(self) -> bool:
        """Write what was gathered, in one transaction; False (rows kept) if the log refused."""
        with self._lock:
            events, attempts = list(self._events.values()), list(self._attempts)
            self._events, self._attempts = {}, []
        if not events and not attempts:
            return True
        if time.monotonic() < self._quiet_until:  # it refused lately: keep gathering, try later
            self._keep(events, attempts)
            return False
        try:
            with self.database().transaction() as cursor:
                if events:
                    cursor.executemany(UPSERT_EVENT, events)
                if attempts:
                    cursor.executemany(INSERT_ATTEMPT, attempts)
        except Exception as exc:  # sqlite3, psycopg, a full disk: delivery goes on regardless
            self._keep(events, attempts)
            EVENT_LOG_ERRORS.inc()
            log.log(logging.DEBUG if self._failing else logging.WARNING,
                    "event log not written (%s); %d event(s) and %d attempt(s) wait for the next try",
                    _cause(exc), len(events), len(attempts))
            self._failing = True
            self._quiet_until = time.monotonic() + RETRY_AFTER
            return False
        if self._failing:
            log.info("event log written again")
        self._failing = False
        return True

    def _keep(self, events: list[tuple], attempts: list[tuple]) -> None:
        with self._lock:
            for row in events:
                self._events.setdefault(row[0], row)
            self._attempts[:0] = attempts
            del self._attempts[:-MAX_PENDING]
            while len(self._events) > MAX_PENDING:
                self._events.pop(next(iter(self._events)))

    def prune(self, older_than: float, *, budget: float = 2.0) -> int:
        """Remove rows older than `older_than` (epoch seconds), a batch at a time, for up to
        `budget` seconds; how many went."""
        removed = 0
        for table, column, key in (("events", "received_at", "id"), ("attempts", "at", "rowid")):
            started = time.monotonic()  # each table its own budget: the attempts outnumber the events
            while time.monotonic() - started < budget / 2:
                with self.database().transaction() as cursor:
                    cursor.execute(_prune_sql(table, column, key, self.database()), (older_than, PRUNE_BATCH))
                    count = max(cursor.rowcount, 0)
                removed += count
                if count < PRUNE_BATCH:
                    break
        return removed

    def last_attempt(self, event_id: str, handler: str) -> int:
        """The highest attempt number the log has for a handler and an event (0: none)."""
        [(highest,)] = self.database().query(
            "SELECT MAX(attempt) FROM attempts WHERE event_id = ? AND handler = ?", (event_id, handler))
        return int(highest or 0)

    def reseal(self) -> int:
        """Seal every record again under the first key (rotate-keys); how many."""
        count, after = 0, ""
        while True:
            rows = self.database().query("SELECT id, record FROM events WHERE id > ? ORDER BY id LIMIT ?",
                                         (after, PRUNE_BATCH))
            if not rows:
                return count
            resealed = [(self.codec.reseal(record.encode(), what=f"event {event_id}").decode(), event_id)
                        for event_id, record in rows]
            with self.database().transaction() as cursor:
                cursor.executemany("UPDATE events SET record = ? WHERE id = ?", resealed)
            count, after = count + len(rows), rows[-1][0]

    def record(self, sealed: str, event_id: str) -> dict:
        """An event's record, opened."""
        return json.loads(self.codec.open_text(sealed, what=f"event {event_id} in the event log"))

    def close(self) -> None:
        """Write what is left and let the database go."""
        self.flush()
        if self._db is not None:
            self._db.close()


def _prune_sql(table: str, column: str, key: str, db: Database) -> str:
    # PostgreSQL has no rowid: its attempts go by ctid, the row's own address.
    key = "ctid" if key == "rowid" and db.dialect == "postgresql" else key
    return f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {column} < ? LIMIT ?)"


def _cause(exc: Exception) -> str:
    return str(exc) if isinstance(exc, RelayError) else type(exc).__name__


def error_text(exc: BaseException) -> str:
    """What an attempt's error says in the log (a plain column): inbox-relay's own words when its
    own code raised it (the built-in handlers), else only the exception's type, since a plugin's
    message may quote the message it was handling."""
    ours = isinstance(exc, RelayError) and raised_in(exc).startswith("workers.")
    return f"{type(exc).__name__}: {exc}"[:300] if ours else type(exc).__name__


__all__ = ["Attempt", "EventLog", "EventLogUnavailable", "error_text"]
