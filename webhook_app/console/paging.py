"""The events list of the console: `events list`'s filters read from a query string, newest first,
a page at a time behind a cursor that a shared URL keeps.

The cursor is the last row's (received_at, id), as `workers.events.queries.list_page` gives it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from workers.events.log import EventLog
from workers.events.queries import OUTCOMES, Filters, list_page, since_epoch

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
    given: dict[str, Any] = {name: args[name] for name in FILTERS if args.get(name)}
    if given.get("outcome") not in (None, *OUTCOMES):
        raise BadFilter(f"outcome: one of {', '.join(OUTCOMES)}")
    since = _since(args["since"]) if args.get("since") else None
    return Filters(**given, since=since, limit=_limit(args.get("limit"))), _cursor(args.get("before"))


def events_page(journal: EventLog, filters: Filters, before: tuple[float, str] | None) -> Page:
    """The events that match, newest first, after the cursor; each with `handlers` as in
    `events list`."""
    found, after = list_page(journal, replace(filters, before=before))
    # The cursor is the exact stored time, not the rounded ISO one the page shows.
    return Page(found, f"{after[0]!r}_{after[1]}" if after else None)


def _cursor(text: str | None) -> tuple[float, str] | None:
    if not text:
        return None
    epoch, _, event_id = text.partition("_")
    try:
        return float(epoch), event_id
    except ValueError:
        raise BadFilter("before: a cursor from a \"next\" link") from None


def _since(text: str) -> float:
    try:
        return since_epoch(text)
    except ValueError:
        raise BadFilter("since: a time ago (15m, 2h, 7d) or a date like 2026-01-31T12:00") from None


def _limit(text: str | None) -> int:
    if not text:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadFilter(f"limit: a number from 1 to {MAX_LIMIT}")
    return int(text)
