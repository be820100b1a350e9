"""The dead letters page: `dead-letters list`'s filters in the query string, newest first; replay
one, replay all that match or purge them, each of the two after a page that shows how many.

It calls what the CLI calls (workers.delivery.dead_letters) and, like `dead-letters list`, never
shows a letter's message text or raw item.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import redis
from flask import Blueprint, current_app, render_template, request
from werkzeug.wrappers import Response

from webhook_app.console.collaborators import collaborators
from webhook_app.console.pages import flash_and_return, when
from workers.delivery import dead_letters as admin
from workers.durations import parse_duration
from workers.errors import AdminError
from workers.records import KINDS

log = logging.getLogger(__name__)
dead_letters = Blueprint("dead_letters", __name__, url_prefix="/console/dead-letters")
# The CLI's option names (--handler, --kind, --account, --older-than, --newer-than).
FILTERS = ("handler", "kind", "account", "older_than", "newer_than")
SHOWN = 500  # rows on the page at most; the count above the table is of every match
ACTIONS = {"replay-all": ("Replay", "dead_letters.replay_all"), "purge": ("Purge", "dead_letters.purge")}


class BadFilter(ValueError):
    """A filter value the page cannot use; its message names the parameter."""


def letter_filter(args: Mapping[str, str]) -> admin.LetterFilter:
    """The LetterFilter a query string (or a form) names; empty values mean "any"."""
    given = {name: args.get(name, "").strip() or None for name in FILTERS}
    ages = {}
    for name in ("older_than", "newer_than"):
        text = given[name]
        try:
            ages[name] = None if text is None else parse_duration(text)
        except ValueError:
            raise BadFilter(f"{name}: a duration like 90, 90s, 15m, 2h or 7d") from None
    return admin.LetterFilter(handler=given["handler"], kind=given["kind"],
                              account_id=given["account"], **ages)


def kept_filters(args: Mapping[str, str]) -> dict[str, str]:
    """The filters given, to carry into links, forms and redirects."""
    return {name: args[name] for name in FILTERS if args.get(name)}


@dead_letters.errorhandler(redis.RedisError)
def _store_down(exc: redis.RedisError) -> tuple[str, int]:
    return render_template("error.html", error=f"the store does not answer ({type(exc).__name__})"), 503


@dead_letters.route("")
def letter_list() -> str | tuple[str, int]:
    """The dead letters that match, newest failure first (never their message text)."""
    args = kept_filters(request.args)
    try:
        where = letter_filter(args)
    except BadFilter as exc:
        return _list_page(args, error=str(exc), letters=[], total=0), 400
    found = admin.list_dead_letters(collaborators(current_app).store().dead_letters, where)
    found.sort(key=lambda letter: (letter.failed_at, letter.handler, letter.event_id), reverse=True)
    return _list_page(args, error=None, letters=[_row(letter) for letter in found[:SHOWN]],
                      total=len(found))


@dead_letters.route("/replay", methods=["POST"])
def replay() -> Response:
    """Queue one letter's event again for its handler; back to the list with a notice."""
    args = kept_filters(request.form)
    handler, event_id = request.form.get("letter_handler", ""), request.form.get("letter_event", "")
    found = collaborators(current_app)
    runtime = found.runtime()
    try:
        letter = admin.get_dead_letter(runtime.store.dead_letters, handler, event_id)
        admin.replay_dead_letter(runtime, letter)
    except AdminError as exc:
        return flash_and_return(str(exc), "dead_letters.letter_list", **args)
    finally:
        if runtime.journal is not None:
            runtime.journal.flush()
    log.info("console: replayed the dead letter of %s for %s", event_id, handler)
    return flash_and_return(f"queued {event_id} again for {handler}", "dead_letters.letter_list", **args)


@dead_letters.route("/replay-all", methods=["GET", "POST"])
def replay_all() -> Response | str | tuple[str, int]:
    """GET: how many letters match, and a form to replay them; POST: replay them."""
    return _confirmed("replay-all")


@dead_letters.route("/purge", methods=["GET", "POST"])
def purge() -> Response | str | tuple[str, int]:
    """GET: how many letters match, and a form to delete them; POST: delete them for good."""
    return _confirmed("purge")


def _confirmed(action: str) -> Response | str | tuple[str, int]:
    """The confirmation page (GET) or the action (POST) on the letters the filters select; the
    POST carries the count the page showed, and does nothing if another number matches by now."""
    source = request.form if request.method == "POST" else request.args
    args = kept_filters(source)
    try:
        where = letter_filter(args)
    except BadFilter as exc:
        return _list_page(args, error=str(exc), letters=[], total=0), 400
    found = collaborators(current_app)
    selected = admin.list_dead_letters(found.store().dead_letters, where)
    if request.method == "GET":
        verb, endpoint = ACTIONS[action]
        return render_template("dead_letters_confirm.html", verb=verb, endpoint=endpoint, args=args,
                               count=len(selected), everything=where.is_empty)
    if request.form.get("count") != str(len(selected)):
        return flash_and_return(f"{len(selected)} dead letter(s) match now, not the "
                                f"{request.form.get('count') or '?'} you confirmed: look again",
                                ACTIONS[action][1], **args)
    if action == "purge":
        count = admin.remove_dead_letters(found.store().dead_letters, selected)
        log.info("console: purged %d dead letter(s)", count)
        return flash_and_return(f"purged {count} dead letter(s)", "dead_letters.letter_list", **args)
    runtime = found.runtime()
    try:
        count = admin.replay_dead_letters(runtime, where)
    except AdminError as exc:
        return flash_and_return(str(exc), "dead_letters.letter_list", **args)
    finally:
        if runtime.journal is not None:
            runtime.journal.flush()
    log.info("console: replayed %d dead letter(s)", count)
    return flash_and_return(f"replayed {count} dead letter(s)", "dead_letters.letter_list", **args)


def _row(letter: Any) -> dict:
    """What the list shows of a letter: never the event's message text or raw item."""
    event = admin.letter_summary(letter)["event"]
    return {"handler": letter.handler, "event_id": letter.event_id, "kind": event.get("kind"),
            "account_id": event.get("account_id"), "attempts": letter.attempts, "error": letter.error,
            "first_failed_at": when(letter.first_failed_at), "failed_at": when(letter.failed_at)}


def _list_page(args: dict[str, str], *, error: str | None, letters: list[dict], total: int) -> str:
    return render_template("dead_letters.html", args=args, error=error, letters=letters, total=total,
                           shown=SHOWN, kinds=KINDS)
