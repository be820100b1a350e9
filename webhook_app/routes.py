"""HTTP endpoints: the handshake, deliveries, health."""

from __future__ import annotations

import hmac
import logging
import sqlite3
import time

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from webhook_app.body import BodyError, envelope_problem, read_body
from webhook_app.signature import SignatureError, verify
from webhook_app.state import WebState, web_state
from workers.metrics import ACK_SECONDS, DELIVERIES

log = logging.getLogger(__name__)
blueprint = Blueprint("webhook", __name__)


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
def receive() -> ResponseReturnValue:
    """Verify, record durably, answer 200; publishing happens in the relay, off this path."""
    started = time.perf_counter()
    response, status = _receive(_state())
    DELIVERIES.labels(OUTCOMES.get(status, "bad_request")).inc()
    ACK_SECONDS.observe(time.perf_counter() - started)
    return response, status


def _receive(state: WebState) -> tuple[Response, int]:
    try:
        body = read_body(state.settings.web.max_body_bytes)
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
        delivery_id = state.record(state.codec.seal(body))
    except (sqlite3.Error, OSError) as exc:
        log.error("inbox write failed: %s", type(exc).__name__)
        return _error(503, "cannot record the delivery; retry")
    state.wake_relay()
    log.debug("accepted delivery=%s bytes=%d", delivery_id, len(body))  # the access log has each POST
    return Response("EVENT_RECEIVED", mimetype="text/plain"), 200


@blueprint.app_errorhandler(HTTPException)
def http_error(exc: HTTPException):
    """Framework errors (404, 405, 413 ...) as short JSON, never an HTML page; 405 keeps its Allow."""
    response, status = _error(exc.code or 400, exc.description or exc.name)
    allowed = dict(exc.get_headers()).get("Allow")
    if allowed:
        response.headers["Allow"] = allowed
    return response, status


@blueprint.app_errorhandler(Exception)
def unexpected(exc: Exception):
    """Anything unforeseen: 503 so that Meta retries, never a 500."""
    log.exception("unexpected error: %s", type(exc).__name__)
    return _error(503, "temporarily unavailable; retry")


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status
