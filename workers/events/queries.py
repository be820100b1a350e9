"""Reading the event log: the filters of `events list` (and the console), newest first, and one
event with every attempt. The same statements on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from workers.durations import parse_duration
from workers.events.log import EventLog

COLUMNS = "id, kind, platform, account_id, mid, conversation_id, source, hydration, received_at"
OUTCOMES = ("pending", "success", "retry", "dead_letter")
# An attempt that is its handler's latest for its event.
LATEST = "a.at = (SELECT MAX(b.at) FROM attempts b WHERE b.event_id = a.event_id AND b.handler = a.handler)"


@dataclass(frozen=True)
class Filters:
    """What `events list` keeps; None: any."""

    kind: str | None = None
    platform: str | None = None
    account: str | None = None
    handler: str | None = None
    outcome: str | None = None
    source: str | None = None
    mid: str | None = None
    since: float | None = None   # epoch seconds
    limit: int = 50
    before: tuple[float, str] | None = None  # a page's cursor: (received_at, id) of the row before


def since_epoch(text: str) -> float:
    """`15m`, `2h`, `7d` ago, or a date (ISO 8601; UTC unless it names its zone), as epoch
    seconds; ValueError names what it takes."""
    try:
        return time.time() - parse_duration(text)
    except (ValueError, TypeError):
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a time ago (15m, 2h, 7d) nor a date like "
                         "2026-01-31T12:00") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def list_events(journal: EventLog, filters: Filters) -> list[dict]:
    """The events that match, newest first, each with `handlers`: {handler: its latest outcome}."""
    return list_page(journal, filters)[0]


def list_page(journal: EventLog, filters: Filters) -> tuple[list[dict], tuple[float, str] | None]:
    """`list_events`, and the cursor of the next page (None: this is the last). Events noted in
    one batch share a received_at: the id breaks the tie, so paging sees each event once."""
    where, params = _where(filters)
    rows = journal.database().query(f"SELECT {COLUMNS} FROM events e {where} "
                                    "ORDER BY e.received_at DESC, e.id DESC LIMIT ?",
                                    (*params, filters.limit))
    cursor = (float(rows[-1][8]), str(rows[-1][0])) if len(rows) == filters.limit else None
    found = [_row(row) for row in rows]
    outcomes = _latest_outcomes(journal, [event["id"] for event in found])
    for event in found:
        event["handlers"] = outcomes.get(event["id"], {})
    return found, cursor


def show_event(journal: EventLog, event_id: str) -> dict | None:
    """One event: its record (opened) and every attempt, oldest first; None if not in the log."""
    rows = journal.database().query("SELECT record FROM events WHERE id = ?", (event_id,))
    if not rows:
        return None
    attempts = journal.database().query(
        "SELECT handler, attempt, outcome, error, at, duration_ms FROM attempts WHERE event_id = ? "
        "ORDER BY at", (event_id,))
    return {"event": journal.record(rows[0][0], event_id),
            "attempts": [{"handler": h, "attempt": n, "outcome": o, "error": e, "at": iso(at),
                          "duration_ms": d} for h, n, o, e, at, d in attempts]}


def count_events(journal: EventLog) -> tuple[int, int]:
    """Rows in the log: (events, attempts)."""
    [(events,)] = journal.database().query("SELECT COUNT(*) FROM events")
    [(attempts,)] = journal.database().query("SELECT COUNT(*) FROM attempts")
    return int(events), int(attempts)


def _where(filters: Filters) -> tuple[str, list]:
    clauses, params = [], []
    for name, column in (("kind", "kind"), ("platform", "platform"), ("account", "account_id"),
                         ("source", "source"), ("mid", "mid")):
        value = getattr(filters, name)
        if value is not None:
            clauses.append(f"e.{column} = ?")
            params.append(value)
    if filters.since is not None:
        clauses.append("e.received_at >= ?")
        params.append(filters.since)
    if filters.before is not None:
        clauses.append("(e.received_at < ? OR (e.received_at = ? AND e.id < ?))")
        params += [filters.before[0], filters.before[0], filters.before[1]]
    if filters.handler is not None or filters.outcome is not None:
        inner = ["a.event_id = e.id", LATEST]
        for value, column in ((filters.handler, "handler"), (filters.outcome, "outcome")):
            if value is not None:
                inner.append(f"a.{column} = ?")
                params.append(value)
        clauses.append(f"EXISTS (SELECT 1 FROM attempts a WHERE {' AND '.join(inner)})")
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _latest_outcomes(journal: EventLog, ids: list[str]) -> dict[str, dict[str, str]]:
    if not ids:
        return {}
    marks = ", ".join("?" for _ in ids)
    rows = journal.database().query(
        f"SELECT event_id, handler, outcome FROM attempts WHERE event_id IN ({marks}) ORDER BY at", ids)
    latest: dict[str, dict[str, str]] = {}
    for event_id, handler, outcome in rows:
        latest.setdefault(event_id, {})[handler] = outcome
    return latest


def _row(row: tuple) -> dict:
    names = [column.strip() for column in COLUMNS.split(",")]
    event = dict(zip(names, row, strict=True))
    event["received_at"] = iso(event["received_at"])
    return event


def iso(epoch: float | None) -> str | None:
    """Epoch seconds as ISO 8601, UTC."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(float(epoch), UTC).isoformat(timespec="milliseconds")


FILTER_NAMES = tuple(f.name for f in fields(Filters))
