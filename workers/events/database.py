"""The two places the event log can live, behind one small interface: SQLite in data_dir (one
machine: WAL, so that the workers' processes and the commands share it) and PostgreSQL by URL
(several nodes: a connection pool per process). Queries are written once, with `?` placeholders."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from workers.errors import RelayError
from workers.events.schema import MIGRATIONS, VERSION_TABLE
from workers.urls import shown

LOG_FILE = "events.db"
BUSY_SECONDS = 3.0       # the longest a write waits for the database (lock, pool, statement)
MIGRATION_LOCK = 724873  # a PostgreSQL advisory lock: one process migrates at a time
# The pool warns at every failed connect; the event log says it once per outage itself.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


class EventLogUnavailable(RelayError):
    """The event log's database cannot be opened or written (its URL shown without password)."""


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    @property
    def rowcount(self) -> int: ...


class Database:
    """A connection (or pool) to the log's database; every call runs in one transaction."""

    where: str
    dialect: str  # "sqlite" or "postgresql": the few statements that differ ask

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Cursor]:  # pragma: no cover
        raise NotImplementedError
        yield

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """The rows of one read (a read waits for no writer)."""
        with self.transaction(write=False) as cursor:
            cursor.execute(sql, params)
            return [tuple(row) for row in cursor.fetchall()]

    def close(self) -> None:
        """Let the connections go."""


class SqliteDatabase(Database):
    """The log in a file in data_dir, private to the user like the rest of it."""

    dialect = "sqlite"

    def __init__(self, path: Path):
        self.where, self._lock = str(path), threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            # A writer waits this long for another: a task's end, not its work, waits (BUSY_SECONDS).
            self._db = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # the log may lose its last moments, not its file
        except (OSError, sqlite3.Error) as exc:
            raise EventLogUnavailable(f"event log {path}: {exc}") from None
        _migrate_or_close(self)

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Cursor]:
        with self._lock:
            cursor = self._db.cursor()
            # One writer at a time (waiting BUSY_SECONDS for the others); WAL readers wait for none.
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _Qmark(cursor)
                cursor.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):  # a failed COMMIT must not leave it open
                    cursor.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._db.close()


class PostgresDatabase(Database):
    """The log in a PostgreSQL database every node shares (psycopg 3, a small pool per process)."""

    dialect = "postgresql"

    def __init__(self, url: str):
        from psycopg_pool import ConnectionPool

        self.where = shown(url)
        # Short waits and a statement timeout: a log that does not answer holds a task's end for
        # seconds at most, never its delivery; keepalives notice a vanished server.
        self._pool = ConnectionPool(url, min_size=1, max_size=4, open=False, timeout=BUSY_SECONDS,
                                    kwargs={"connect_timeout": 3, "keepalives": 1, "keepalives_idle": 30,
                                            "options": f"-c statement_timeout={int(BUSY_SECONDS * 1000)}"})
        try:
            self._pool.open(wait=True, timeout=BUSY_SECONDS)
        except Exception as exc:
            self._pool.close()
            raise EventLogUnavailable(f"event log {self.where}: cannot connect "
                                      f"({type(exc).__name__})") from None
        _migrate_or_close(self, lock=f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Cursor]:
        with self._pool.connection() as connection, connection.transaction(), connection.cursor() as cursor:
            yield _Pyformat(cursor)

    def close(self) -> None:
        self._pool.close()


class _Qmark:
    """sqlite3's cursor as it is: `?` placeholders."""

    def __init__(self, cursor: Any):
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        return self._cursor.executemany(sql, rows)

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


class _Pyformat(_Qmark):
    """psycopg's cursor with the queries' `?` placeholders written as `%s`."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        return self._cursor.executemany(sql.replace("?", "%s"), rows)


def _migrate_or_close(db: Database, lock: str | None = None) -> None:
    """Migrate, or let the connections go and say why in one line."""
    try:
        _migrate(db, lock)
    except EventLogUnavailable:
        db.close()
        raise
    except Exception as exc:  # no privilege, a lock held too long, a busy file
        db.close()
        raise EventLogUnavailable(f"event log {db.where}: the schema could not be brought up to date "
                                  f"({type(exc).__name__}: {str(exc)[:200]})") from None


def _migrate(db: Database, lock: str | None = None) -> None:
    """Bring the schema to the newest version, once, whichever process comes first."""
    with db.transaction() as cursor:
        if lock:
            cursor.execute(lock)
        cursor.execute(VERSION_TABLE)
        cursor.execute("SELECT version FROM event_log_version")
        rows = cursor.fetchall()
        current = rows[0][0] if rows else 0
        if current > len(MIGRATIONS):
            raise EventLogUnavailable(f"event log {db.where}: its schema (version {current}) is a newer "
                                      "inbox-relay's: upgrade this node")
        for statements in MIGRATIONS[current:]:
            for statement in statements:
                cursor.execute(statement)
        if not rows:
            cursor.execute("INSERT INTO event_log_version (version) VALUES (?)", (len(MIGRATIONS),))
        elif current < len(MIGRATIONS):
            cursor.execute("UPDATE event_log_version SET version = ?", (len(MIGRATIONS),))


def open_database(log_url: str, data_dir: Path) -> Database:
    """The log's database: PostgreSQL by URL, else SQLite in data_dir."""
    if log_url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(log_url)
    if log_url == "off":
        raise EventLogUnavailable('the event log is off ([events] log_url = "off")')
    if log_url:
        raise EventLogUnavailable(f"[events] log_url: expected empty (SQLite in data_dir), "
                                  f"postgresql://... or \"off\", got {shown(log_url)!r}")
    return SqliteDatabase(data_dir / LOG_FILE)
