"""Whether the inbox at start is whole, and the one the store remembers this node had.

SQLite tells a damaged file (truncated, a garbled header, garbled pages); only the store can tell
an inbox that is whole but holds less than it did: emptied (truncated to 0 bytes, deleted) or its
WAL lost (rows missing below the highest delivery id the relay recorded, see watch.py).
"""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from pathlib import Path

from workers.errors import InboxDamaged, InboxLost
from workers.inbox.database import Inbox
from workers.inbox.watch import INBOX_ID_STATE
from workers.state.memory import StoreMemory

ACCEPT_FLAG = "--accept-inbox-loss"


def check_intact(path: Path) -> None:
    """InboxDamaged unless SQLite reads the inbox at `path` whole (an absent inbox is whole)."""
    if not path.exists():
        return
    try:
        with closing(sqlite3.connect(path, timeout=30)) as db:
            problems = [str(row[0]) for row in db.execute("PRAGMA quick_check(3)")]
    except sqlite3.DatabaseError as exc:
        raise InboxDamaged.of(path, str(exc)) from None
    if problems != ["ok"]:
        found = [line for p in problems for line in p.splitlines() if not line.startswith("***")]
        raise InboxDamaged.of(path, "; ".join(found)[:160] or "quick_check failed")


def check_remembered(path: Path, memory: StoreMemory, node: str, *, accept_loss: bool) -> str | None:
    """InboxLost when the inbox holds less than the store remembers; with `accept_loss`, begin a
    new inbox identity instead and return a line saying so."""
    inbox = Inbox(path)
    own, had = inbox.state(INBOX_ID_STATE), memory.inbox_of(node)
    high = inbox.high_id()
    if had and had != own:
        problem = (f"the inbox {path} is {'empty' if own is None else 'another inbox'}, but this "
                   f"node's inbox held deliveries up to #{memory.high_water(had)}: restore it (with "
                   f"its -wal file) from a copy, or start with {ACCEPT_FLAG} to begin a new inbox")
    elif own and high < (mark := memory.high_water(own)):
        problem = (f"the inbox {path} ends at delivery #{high} but held deliveries up to #{mark}: "
                   f"rows were lost (a deleted -wal file?): restore it with its -wal file, or start "
                   f"with {ACCEPT_FLAG} to go on without them")
    else:
        return None
    if not accept_loss:
        raise InboxLost(problem)
    new_id = uuid.uuid4().hex
    inbox.set_state(INBOX_ID_STATE, new_id)  # ids below the old mark may come again: a new name
    memory.set_inbox_of(node, new_id)
    memory.raise_high_water(new_id, high)
    return f"inbox-relay: {ACCEPT_FLAG}: going on with {path} as a new inbox ({problem.split(':')[0]})"
