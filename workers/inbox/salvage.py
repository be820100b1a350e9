"""Reading what can be read of a damaged inbox into a new one (`inbox-relay inbox salvage`).

The damaged file is never written: salvage works on a copy (with its -wal file). A garbled first
page is replaced by the first page of a new inbox, which holds the same schema at the same pages;
rows are then read in id order, stepping over the ids whose pages SQLite cannot read.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from workers.inbox.database import Inbox
from workers.inbox.schema import FIELDS
from workers.inbox.watch import INBOX_ID_STATE

PAGE_SIZE = 4096   # SQLite's default, which the inbox never changes
SCAN_AHEAD = 10000  # ids tried past the last readable one when the file no longer says its highest


@dataclass(frozen=True)
class Salvaged:
    """What a salvage read and wrote."""

    read: int            # deliveries copied into the new inbox
    unpublished: int     # of those, waiting for the broker (the relay publishes them)
    failed: int          # of those, marked failed by a worker
    unreadable: int      # ids SQLite could not read (a pruned id on a damaged page counts too)
    highest: int         # the highest id read (0: none)
    identity: str | None  # the inbox id kept, None when it could not be read (or was not kept)


def salvage(damaged: Path, target: Path) -> Salvaged:
    """Copy the readable deliveries of `damaged` into `target` (made if absent, else appended to)."""
    with tempfile.TemporaryDirectory(prefix="inbox-salvage-") as scratch:
        copy = Path(scratch) / "inbox.sqlite3"
        for suffix in ("", "-wal"):
            if Path(f"{damaged}{suffix}").exists():
                shutil.copyfile(f"{damaged}{suffix}", f"{copy}{suffix}")
        with closing(_readable(copy, scratch)) as db:
            rows, unreadable = _rows(db)
            identity = _identity(db)
    fresh = not target.exists() or Inbox(target).high_id() == 0
    kept = _write(target, rows, identity if fresh else None, keep_ids=fresh)
    return Salvaged(read=len(rows), unpublished=sum(1 for r in rows if r[3] is None),
                    failed=sum(1 for r in rows if r[5] is not None), unreadable=unreadable,
                    highest=rows[-1][0] if rows else 0, identity=identity if kept else None)


def _readable(copy: Path, scratch: str) -> sqlite3.Connection:
    """A connection to the copy; its first page replaced if SQLite cannot read it."""
    db = sqlite3.connect(copy)
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.DatabaseError:
        db.close()
    template = Path(scratch) / "template.sqlite3"
    new = Inbox(template)
    new.suspend_for_fork()  # closes its connection: the file then holds every page of a new inbox
    new.resume_after_fork()
    first = bytearray(template.read_bytes()[:PAGE_SIZE])
    first[28:32] = (max(copy.stat().st_size // PAGE_SIZE, 1)).to_bytes(4, "big")  # its page count
    with open(copy, "r+b") as out:
        out.write(first)
    return sqlite3.connect(copy)


def _readable_fields(db: sqlite3.Connection) -> str:
    """FIELDS, with NULL for the columns of a newer release that an older inbox (damaged before
    it was ever opened by this one) lacks: its rows still read, in FIELDS' shape."""
    try:
        known = {row[1] for row in db.execute("PRAGMA table_info(deliveries)")}
    except sqlite3.DatabaseError:
        known = set()
    if not known:  # the table cannot be asked about: read it as this release writes it
        return FIELDS
    return ", ".join(name if name in known else "NULL" for name in FIELDS.split(", "))


def _rows(db: sqlite3.Connection) -> tuple[list[tuple], int]:
    """Every readable row in id order, and how many ids could not be read."""
    rows: list[tuple] = []
    unreadable, next_id, bound = 0, 1, _highest(db)
    fields = _readable_fields(db)
    while True:
        try:
            for row in db.execute(f"SELECT {fields} FROM deliveries WHERE id >= ? ORDER BY id", (next_id,)):
                rows.append(row)
                next_id = row[0] + 1
            return rows, unreadable
        except sqlite3.DatabaseError:
            pass
        # The scan broke on a damaged page: try the ids after it one by one, up to the next row.
        limit = bound if bound >= next_id else next_id + SCAN_AHEAD
        found = None
        while found is None and next_id <= limit:
            try:
                found = db.execute(f"SELECT {fields} FROM deliveries WHERE id = ?", (next_id,)).fetchone()
            except sqlite3.DatabaseError:
                unreadable += 1
            next_id += 1
        if found is None:
            return rows, unreadable
        rows.append(found)


def _highest(db: sqlite3.Connection) -> int:
    for query in ("SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'",
                  "SELECT MAX(id) FROM deliveries"):
        try:
            row = db.execute(query).fetchone()
        except sqlite3.DatabaseError:
            continue
        if row and row[0]:
            return int(row[0])
    return 0


def _identity(db: sqlite3.Connection) -> str | None:
    try:
        row = db.execute("SELECT value FROM relay_state WHERE key = ?", (INBOX_ID_STATE,)).fetchone()
    except sqlite3.DatabaseError:
        return None
    return str(row[0]) if row else None


def _write(target: Path, rows: list[tuple], identity: str | None, *, keep_ids: bool) -> bool:
    """Rows into `target` in one transaction: with their ids into a new inbox, else as new rows;
    returns whether `target` now has `identity` (never replacing one it had)."""
    Inbox(target)  # the schema, as the relay expects it
    columns = FIELDS if keep_ids else FIELDS.removeprefix("id, ")
    values = [row if keep_ids else row[1:] for row in rows]
    marks = ", ".join("?" * len(values[0])) if values else ""
    with closing(sqlite3.connect(target, timeout=30, isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")
        if values:
            db.executemany(f"INSERT INTO deliveries ({columns}) VALUES ({marks})", values)
        if identity:  # the same inbox to the store: its high-water mark still applies
            db.execute("INSERT OR IGNORE INTO relay_state (key, value) VALUES (?, ?)",
                       (INBOX_ID_STATE, identity))
        db.execute("COMMIT")
        row = db.execute("SELECT value FROM relay_state WHERE key = ?", (INBOX_ID_STATE,)).fetchone()
    return identity is not None and row is not None and row[0] == identity
