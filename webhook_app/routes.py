"""HTTP endpoints: the handshake, deliveries, health."""

from __future__ import annotations

import hmac
import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from webhook_app.body import BodyError, envelope_problem, read_body
from webhook_app.signature import SignatureError, verify
from webhook_app.state import WebState, web_state
from workers.inbox.schema import Arrival
from workers.metrics import ACK_SECONDS, DELIVERIES

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)
blueprint = Blueprint("webhook", __name__)


API_VERSION_HEADER = "Facebook-API-Version"
OUTCOMES = {200: "accepted", 403: "bad_signature", 413: "too_large", 400: "bad_request",
            503: "unavailable"}


def _state() -> WebState:
    return web_state()


@blueprint.get("/webhook")
def handshake():
    """Meta's subscription check: echo hub.challenge when the verify token matches."""
    try:
        args = request.args
    except UnicodeDecodeError:  # raw bytes a server passed on: no token of ours looks so
        return _error(403, "verification failed")
    token = args.get("hub.verify_token", "")
    expected = _state().settings.meta.verify_token
    if args.get("hub.mode") == "subscribe" and hmac.compare_digest(token.encode(), expected.encode()):
        return Response(args.get("hub.challenge", ""), 200, mimetype="text/plain")
    return _error(403, "verification failed")


@blueprint.post("/webhook")
def delivery() -> Response:
    """A delivery, when Flask serves it (an app without DeliveryEndpoint in front)."""
    return answer_delivery(_state(), request)


class DeliveryEndpoint:
    """Deliveries answered in front of Flask; every other request goes on to Flask.

    Flask's request and app contexts and its response hooks were a fifth of a web worker's time per
    delivery (bench/ingest.py); answering one needs none of them. Flask's own URL map decides what
    is a delivery, so both agree on every path and method.
    """

    def __init__(self, app: Flask):
        self.flask_wsgi: WSGIApplication = app.wsgi_app
        self.url_map = app.url_map
        self.extensions = app.extensions  # the state is looked up per request, as Flask's routes do

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve a delivery, or hand the request to Flask."""
        if not self._is_delivery(environ):
            return self.flask_wsgi(environ, start_response)
        response = answer_delivery(self.extensions["inbox_relay"], Request(environ))
        return response(environ, start_response)

    def _is_delivery(self, environ: WSGIEnvironment) -> bool:
        try:
            endpoint, _ = self.url_map.bind_to_environ(environ).match()
        except HTTPException:  # 404, 405, a redirect: Flask answers those
            return False
        return endpoint == "webhook.delivery"


def answer_delivery(state: WebState, request: Request) -> Response:
    """The answer to a delivery, counted and timed; never a 500 (Meta retries a 503)."""
    started = time.perf_counter()
    try:
        response = receive(state, request)
    except Exception as exc:
        log.exception("unexpected error: %s", type(exc).__name__)
        response = _error(503, "temporarily unavailable; retry")
    DELIVERIES.labels(OUTCOMES.get(response.status_code, "bad_request")).inc()
    ACK_SECONDS.observe(time.perf_counter() - started)
    return response


def receive(state: WebState, request: Request) -> Response:
    """Verify, record durably, answer 200; publishing happens in the relay, off this path."""
    try:
        body = read_body(request, state.settings.web.max_body_bytes)
    except BodyError as exc:
        return _error(exc.status, str(exc))
    try:
        verify(body, request.headers.get("X-Hub-Signature-256"), state.settings.meta.app_secrets)
    except SignatureError as exc:
        log.warning("rejected delivery: %s", exc)
        return _error(403, str(exc))
    problem = envelope_problem(body)
    if problem:
        return _error(400, problem)
    try:
        delivery_id = state.record(Arrival(state.codec.seal(body), api_version_of(request)))
    except (sqlite3.Error, OSError) as exc:
        log.error("inbox write failed: %s", type(exc).__name__)
        return _error(503, "cannot record the delivery; retry")
    state.wake_relay()
    log.debug("accepted delivery=%s bytes=%d", delivery_id, len(body))  # the access log has each POST
    return Response("EVENT_RECEIVED", mimetype="text/plain")


def api_version_of(request: Request) -> str | None:
    """The Facebook-API-Version header Meta sends with every delivery (`v27.0`), kept with it.
    Headers are not signed: anything longer than a version, or not plain ASCII, is left out."""
    value = request.headers.get(API_VERSION_HEADER, "").strip()
    return value if 0 < len(value) <= 16 and value.isascii() and value.isprintable() else None


@blueprint.app_errorhandler(HTTPException)
def http_error(exc: HTTPException):
    """Framework errors (404, 405, 413 ...) as short JSON, never an HTML page; 405 keeps its Allow."""
    response = _error(exc.code or 400, exc.description or exc.name)
    allowed = dict(exc.get_headers()).get("Allow")
    if allowed:
        response.headers["Allow"] = allowed
    return response


@blueprint.app_errorhandler(Exception)
def unexpected(exc: Exception):
    """Anything unforeseen: 503 so that Meta retries, never a 500."""
    log.exception("unexpected error: %s", type(exc).__name__)
    return _error(503, "temporarily unavailable; retry")


def _error(status: int, message: str) -> Response:
    return Response(json.dumps({"error": message}), status, mimetype="application/json")
