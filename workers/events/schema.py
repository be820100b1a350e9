"""The event log's tables, the same on SQLite and PostgreSQL, and their versions: each process
brings the schema up to date when it opens the log, so an upgrade never needs a manual step."""

from __future__ import annotations

# Each entry moves the schema one version up; a released entry is never changed, only appended to.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS events (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, platform TEXT, account_id TEXT, mid TEXT,
            conversation_id TEXT, source TEXT, hydration TEXT, received_at DOUBLE PRECISION NOT NULL,
            record TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS events_received ON events (received_at)",
        "CREATE INDEX IF NOT EXISTS events_mid ON events (mid)",
        """CREATE TABLE IF NOT EXISTS attempts (
            event_id TEXT NOT NULL, handler TEXT NOT NULL, attempt INTEGER NOT NULL,
            at DOUBLE PRECISION NOT NULL, outcome TEXT NOT NULL, error TEXT, duration_ms DOUBLE PRECISION)""",
        "CREATE INDEX IF NOT EXISTS attempts_event ON attempts (event_id, handler, at)",
        "CREATE INDEX IF NOT EXISTS attempts_at ON attempts (at)",
    ),
    # `events list --mid` newest first: with (mid) alone, PostgreSQL chose to walk received_at
    # backwards through a million rows (171 ms); this index answers the filter and the order.
    ("CREATE INDEX IF NOT EXISTS events_mid_received ON events (mid, received_at)",),
)
VERSION_TABLE = "CREATE TABLE IF NOT EXISTS event_log_version (version INTEGER NOT NULL)"
