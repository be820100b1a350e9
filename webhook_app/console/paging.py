"""The events list of the console: `events list`'s filters read from a query string, newest first,
a page at a time behind a cursor that a shared URL keeps.

The cursor is the last row's (received_at, id): events noted in one batch share a received_at,
so the id breaks the tie. `Filters` has no cursor yet, so the page is read here with the
filters' own WHERE clause (to move into workers.events.queries when that grows `before`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from workers.durations import parse_duration
from workers.events import queries
from workers.events.log import EventLog
from workers.events.queries import COLUMNS, OUTCOMES, Filters, iso

FILTERS = ("kind", "platform", "account", "handler", "outcome", "source", "mid")
DEFAULT_LIMIT, MAX_LIMIT = 50, 500


class BadFilter(ValueError):
    """A query string value the list cannot use; its message names the parameter."""


@dataclass(frozen=True)
class Page:
    """One page of events and the cursor of the next (None: this is the last)."""

    events: list[dict]
    next_before: str | None


def filters_from(args: Mapping[str, str]) -> tuple[Filters, tuple[float, str] | None]:
    """The filters and the cursor a query string names (empty values mean "any")."""
    given = {name: args[name] for name in FILTERS if args.get(name)}
    if given.get("outcome") not in (None, *OUTCOMES):
        raise BadFilter(f"outcome: one of {', '.join(OUTCOMES)}")
    since = _since(args["since"]) if args.get("since") else None
    return Filters(**given, since=since, limit=_limit(args.get("limit"))), _cursor(args.get("before"))


def events_page(journal: EventLog, filters: Filters, before: tuple[float, str] | None) -> Page:
    """The events that match, newest first, after the cursor; each with `handlers` as in
    `events list`."""
    where, params = queries._where(filters)
    if before is not None:
        where += (" AND " if where else "WHERE ") + "(e.received_at < ? OR (e.received_at = ? AND e.id < ?))"
        params += [before[0], before[0], before[1]]
    rows = journal.database().query(f"SELECT {COLUMNS} FROM events e {where} "
                                    "ORDER BY e.received_at DESC, e.id DESC LIMIT ?",
                                    (*params, filters.limit))
    names = [column.strip() for column in COLUMNS.split(",")]
    found = [dict(zip(names, row, strict=True)) for row in rows]
    # A full page may have a next one; its cursor is the exact stored time, not the rounded ISO.
    cursor = f"{float(found[-1]['received_at'])!r}_{found[-1]['id']}" if len(found) == filters.limit else None
    outcomes = queries._latest_outcomes(journal, [event["id"] for event in found])
    for event in found:
        event["handlers"] = outcomes.get(event["id"], {})
        event["received_at"] = iso(event["received_at"])
    return Page(found, cursor)


def _cursor(text: str | None) -> tuple[float, str] | None:
    if not text:
        return None
    epoch, _, event_id = text.partition("_")
    try:
        return float(epoch), event_id
    except ValueError:
        raise BadFilter("before: a cursor from a \"next\" link") from None


def _since(text: str) -> float:
    """`15m`, `2h`, `7d` ago, or a date (ISO 8601; UTC unless it names its zone)."""
    try:
        return time.time() - parse_duration(text)
    except (ValueError, TypeError):
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadFilter("since: a time ago (15m, 2h, 7d) or a date like 2026-01-31T12:00") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _limit(text: str | None) -> int:
    if not text:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadFilter(f"limit: a number from 1 to {MAX_LIMIT}")
    return int(text)
