"""Login, logout and the overview: per account its state, waiting work, recent dead letters."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import redis
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from webhook_app.console.auth import log_in, token_matches
from webhook_app.console.collaborators import collaborators
from workers.errors import RelayError
from workers.events.queries import Filters, list_events

log = logging.getLogger(__name__)
pages = Blueprint("console", __name__, url_prefix="/console")
RECENT_FAILURES = 10


@pages.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    """The login form; POST takes the console token (never logged, never in a URL)."""
    if request.method == "GET":
        return render_template("login.html")
    found, client = collaborators(current_app), request.remote_addr or "?"
    limiter = found.limiter
    if limiter.blocked(client):
        return render_template("login.html", error="too many failed logins: wait a minute"), 429
    if not token_matches(request.form.get("token", ""), found.settings.console.token):
        limiter.failed(client)
        log.warning("console: a failed login from %s", client)
        return render_template("login.html", error="that is not the console token"), 401
    log_in()
    return redirect(url_for("console.overview"), code=303)


@pages.route("/logout", methods=["POST"])
def logout() -> Response:
    """End the session."""
    from flask import session

    session.clear()
    return redirect(url_for("console.login"), code=303)


@pages.route("/")
def overview() -> str:
    """Per account: paused or throttled, token expiry; waiting work; recent dead letters."""
    found = collaborators(current_app)
    try:
        from workers.cli.status import status_report

        report, store_error = status_report(found.settings, found.store()), None
    except (redis.RedisError, RelayError) as exc:  # the page still shows the log's side
        report, store_error = None, f"the store does not answer ({type(exc).__name__})"
    try:
        failures, log_error = list_events(found.journal, Filters(outcome="dead_letter",
                                                                 limit=RECENT_FAILURES)), None
    except RelayError as exc:
        failures, log_error = [], str(exc)
    return render_template("overview.html", report=report, store_error=store_error,
                           failures=failures, log_error=log_error, when=when)


def when(epoch: float | str | None) -> str:
    """Epoch seconds as a UTC time for a page; '-' for none."""
    if epoch in (None, ""):
        return "-"
    return datetime.fromtimestamp(float(epoch), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def flash_and_return(message: str, endpoint: str, **values: Any) -> Response:
    """Say what was done, back on the page it was done from (303: a reload does not repeat it)."""
    flash(message)
    return redirect(url_for(endpoint, **values), code=303)
