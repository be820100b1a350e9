"""The console's Flask app: security headers, the login gate and CSRF on every request."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Flask, abort, redirect, request, url_for
from werkzeug.wrappers import Response

from webhook_app.console.auth import configure_sessions, csrf_ok, csrf_token, logged_in
from webhook_app.console.collaborators import Collaborators
from webhook_app.console.dead_letter_pages import dead_letters
from webhook_app.console.event_pages import events
from webhook_app.console.pages import pages
from webhook_app.console.wiring import event_log, lazy_runtime, lazy_store
from workers.errors import ConfigError, RelayError
from workers.events.log import EventLog
from workers.settings import Settings

if TYPE_CHECKING:
    from workers.stage import Runtime
    from workers.state import Store

# No inline script or style anywhere: what a stranger's message smuggles in cannot run.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # pages hold decrypted text: no copy left in a disk cache
}
OPEN_ENDPOINTS = {"console.login", "static"}


def create_app(settings: Settings, *, journal: EventLog | None = None,
               store: Callable[[], Store] | None = None,
               runtime: Callable[[], Runtime] | None = None) -> Flask:
    """The console for these settings; tests pass their own event log, store and runtime."""
    if not settings.console.token:
        raise ConfigError("[console] token is empty (or set INBOX_RELAY_CONSOLE_TOKEN): the console "
                          "stays off without one")
    app = Flask(__name__, static_url_path="/console/static")
    configure_sessions(app, settings.console.token)
    app.extensions["inbox_relay"] = Collaborators(
        settings, journal or event_log(settings), store or lazy_store(settings),
        runtime or lazy_runtime(settings))
    app.register_blueprint(pages)
    app.register_blueprint(events)
    app.register_blueprint(dead_letters)
    app.register_error_handler(RelayError, _unavailable)
    app.before_request(_gate)
    app.after_request(_secure)
    app.jinja_env.globals["csrf_token"] = csrf_token
    return app


def serve() -> Flask:
    """The app gunicorn serves (`webhook_app.console:serve()`), from INBOX_RELAY_CONFIG."""
    from workers.priority import lower_process_priority_from_env
    from workers.runtime.config import load_settings

    lower_process_priority_from_env()  # `run` asks for it: the webhook's processes come first
    return create_app(load_settings())


def _gate() -> Response | None:
    """Every page but login needs a session (303 to the login page); every POST its CSRF token."""
    if request.endpoint not in OPEN_ENDPOINTS and not logged_in():
        return redirect(url_for("console.login"), code=303)
    if request.method == "POST" and not csrf_ok(request):
        abort(403, "this form's CSRF token is missing or out of date: reload the page")
    return None


def _unavailable(exc: RelayError) -> tuple[str, int]:
    """The event log or the store cannot be read: say so (named without a password), not a 500."""
    from flask import render_template

    return render_template("error.html", error=str(exc)), 503


def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response
