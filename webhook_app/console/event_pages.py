"""The events list (the CLI's filters in the query string) and one event, with replay."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request, url_for
from werkzeug.wrappers import Response

from webhook_app.console.collaborators import collaborators
from webhook_app.console.pages import flash_and_return
from webhook_app.console.paging import FILTERS, BadFilter, events_page, filters_from
from workers.errors import AdminError
from workers.events.queries import OUTCOMES, show_event
from workers.records import KINDS, Event

log = logging.getLogger(__name__)
events = Blueprint("events", __name__, url_prefix="/console/events")
SOURCES = ("webhook", "sync", "sweep")


@events.route("")
def event_list() -> str | tuple[str, int]:
    """The events that match the query string's filters, newest first, a page at a time."""
    args = {name: value for name, value in request.args.items() if value}
    choices = {"kinds": KINDS, "outcomes": OUTCOMES, "sources": SOURCES}
    try:
        filters, before = filters_from(args)
    except BadFilter as exc:
        return render_template("events.html", error=str(exc), args=args, page=None, **choices), 400
    page = events_page(collaborators(current_app).journal, filters, before)
    shared: dict[str, Any] = {name: args[name] for name in (*FILTERS, "since", "limit") if name in args}
    next_url = url_for("events.event_list", **shared, before=page.next_before) if page.next_before else None
    return render_template("events.html", error=None, args=args, page=page, next_url=next_url, **choices)


@events.route("/<event_id>")
def event(event_id: str) -> str:
    """One event: its record, the hydrated message, the raw item and every attempt."""
    found = show_event(collaborators(current_app).journal, event_id)
    if found is None:
        abort(404, f"no event {event_id} in the event log (older than [events] keep, or never logged)")
    record = found["event"]
    return render_template("event.html", record=record, attempts=found["attempts"],
                           message=_pretty(record.get("message")), raw=_pretty(record.get("raw")),
                           handlers=[h.name for h in collaborators(current_app).settings.handlers])


@events.route("/<event_id>/replay", methods=["POST"])
def replay(event_id: str) -> Response:
    """Queue the event again for one handler (or, with none named, every handler of its kind)."""
    from workers.delivery.replay import replay_event

    found = collaborators(current_app)
    record = show_event(found.journal, event_id)
    if record is None:
        abort(404, f"no event {event_id} in the event log")
    runtime = found.runtime()
    try:
        names = replay_event(runtime, Event.from_dict(record["event"]), request.form.get("handler") or None)
    except AdminError as exc:
        return flash_and_return(str(exc), "events.event", event_id=event_id)
    finally:
        if runtime.journal is not None:
            runtime.journal.flush()  # the replay's "pending" attempt shows on the page it returns to
    log.info("console: replayed %s to %d handler(s)", event_id, len(names))
    return flash_and_return(f"queued again for {', '.join(names) or 'no handler (none takes it)'}",
                            "events.event", event_id=event_id)


def _pretty(value: object) -> str | None:
    """JSON for a <pre> (the template escapes it)."""
    return None if value is None else json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
