"""The inbox's table, the columns added since the first release, and a recorded delivery's row."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import NamedTuple

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
# Added after the first release: inboxes created before get the columns on open. A row recorded
# before a column existed holds NULL in it.
COLUMNS = {"failed_at": "REAL", "error": "TEXT", "confirmed_at": "REAL", "replayed_as": "INTEGER",
           "api_version": "TEXT"}
# What a read returns, in `Delivery`'s order; salvage reads an older file without the last ones.
FIELDS = "id, received_at, body, published_at, force, failed_at, error, api_version"


@dataclass(frozen=True)
class Delivery:
    """One received webhook delivery as recorded."""

    id: int
    received_at: float
    body: bytes
    published_at: float | None
    force: bool = False
    failed_at: float | None = None  # set when a worker could not process it (see `error`)
    error: str | None = None
    api_version: str | None = None  # its Facebook-API-Version header: not secret, kept in the clear


class Arrival(NamedTuple):
    """A delivery as the web edge hands it to the inbox: the sealed body and its API version."""

    body: bytes
    api_version: str | None = None


def delivery_of(row: tuple) -> Delivery:
    """The delivery a row of `FIELDS` holds."""
    return Delivery(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], row[7])


def create_or_migrate(db: sqlite3.Connection) -> None:
    """Make the tables of a new inbox, or add the columns an older inbox lacks."""
    db.executescript(SCHEMA)
    known = {row[1] for row in db.execute("PRAGMA table_info(deliveries)")}
    for name, kind in COLUMNS.items():
        if name not in known:
            db.execute(f"ALTER TABLE deliveries ADD COLUMN {name} {kind}")
