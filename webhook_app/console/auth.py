"""Login by the console token, the session cookie, CSRF tokens and the limit on failed logins.

The session is Flask's signed cookie, keyed by a secret derived from the console token: every
worker of the console shares it without a store, and changing the token logs everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from datetime import timedelta

from flask import Flask, Request, request, session
from flask.sessions import SecureCookieSessionInterface

SESSION_LIFETIME = timedelta(hours=8)
COOKIE_NAME = "inbox_relay_console"
MAX_FAILURES = 5          # failed logins per client ...
FAILURE_WINDOW = 60.0     # ... per this many seconds; beyond, 429


def session_secret(token: str) -> bytes:
    """The key that signs session cookies: the token's HMAC under a fixed label, never the token."""
    return hmac.new(token.encode(), b"inbox-relay console session", hashlib.sha256).digest()


def token_matches(given: str, token: str) -> bool:
    """True if `given` is the console token, compared in constant time."""
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def came_over_https(req: Request) -> bool:
    """HTTPS to this server, or to the reverse proxy in front of it (X-Forwarded-Proto)."""
    return req.is_secure or req.headers.get("X-Forwarded-Proto", "").lower() == "https"


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed cookie session, Secure only when the browser reached us over HTTPS (a
    Secure cookie on plain HTTP would never come back: an SSH tunnel serves plain HTTP)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure when this request came over HTTPS."""
        return came_over_https(request)


def configure_sessions(app: Flask, token: str) -> None:
    """HttpOnly, SameSite=Strict cookies that expire SESSION_LIFETIME after login."""
    app.secret_key = session_secret(token)
    app.session_interface = ConsoleSessions()
    app.config.update(SESSION_COOKIE_NAME=COOKIE_NAME, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_PATH="/console",
                      PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
                      # The signature's age is the session's age: not renewed by each request.
                      SESSION_REFRESH_EACH_REQUEST=False)


def csrf_token() -> str:
    """The session's CSRF token (made on first use); every form carries it."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def csrf_ok(req: Request) -> bool:
    """True if the POST carries the session's CSRF token."""
    expected, given = session.get("csrf"), req.form.get("csrf_token", "")
    return isinstance(expected, str) and hmac.compare_digest(given.encode(), expected.encode())


def log_in() -> None:
    """A fresh session (a new CSRF token: nothing from before the login carries over)."""
    session.clear()
    session.permanent = True
    session["logged_in_at"] = time.time()
    csrf_token()


def logged_in() -> bool:
    """True for a session that logged in less than SESSION_LIFETIME ago."""
    since = session.get("logged_in_at")
    return isinstance(since, float) and time.time() - since < SESSION_LIFETIME.total_seconds()


class LoginLimiter:
    """Failed logins per client address in the last FAILURE_WINDOW seconds, in this process (the
    console runs one process: `inbox-relay console` and `run` start one gunicorn worker)."""

    def __init__(self, *, clock=time.monotonic):
        self._clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def blocked(self, client: str) -> bool:
        """True when `client` failed MAX_FAILURES times within the window."""
        with self._lock:
            return len(self._recent(client)) >= MAX_FAILURES

    def failed(self, client: str) -> None:
        """Count one failed login of `client`."""
        with self._lock:
            self._recent(client).append(self._clock())

    def _recent(self, client: str) -> deque[float]:
        failures, horizon = self._failures[client], self._clock() - FAILURE_WINDOW
        while failures and failures[0] < horizon:
            failures.popleft()
        return failures
