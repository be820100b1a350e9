"""Endpoints for operators and orchestrators: /healthz, /readyz and /metrics."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from typing import TYPE_CHECKING

from flask import Blueprint, Response, jsonify
from flask.typing import ResponseReturnValue
from kombu import Connection
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from webhook_app.state import WebState, web_state
from workers import environment
from workers.connect.tokens import token_state
from workers.runtime.components import board_path, read_board

if TYPE_CHECKING:
    from collections.abc import Iterator

probes = Blueprint("probes", __name__)
PROBE_TIMEOUT = 2  # seconds
log = logging.getLogger(__name__)
_reported: set[str] = set()  # inbox problems already logged by this process: one line, not one per probe


def _state() -> WebState:
    return web_state()


@probes.get("/healthz")
def healthz() -> ResponseReturnValue:
    """200 while the process serves and its inbox reads; how many deliveries wait, and failed."""
    state = _state()
    try:
        counts = state.inbox.counts()
    except sqlite3.DatabaseError as exc:
        return jsonify(status="inbox unreadable", failed=["inbox"], inbox=_inbox_problem(state, exc)), 503
    return jsonify(status="ok", **counts)


def _inbox_problem(state: WebState, exc: sqlite3.DatabaseError) -> str:
    """What the probes say of an inbox SQLite cannot read; logged once per process."""
    problem = (f"failed: {state.inbox.path} cannot be read ({exc}): stop inbox-relay, move it aside "
               "and see `inbox-relay inbox salvage --help`")
    if problem not in _reported:
        _reported.add(problem)
        log.error("%s", problem.removeprefix("failed: "))
    return problem


@probes.get("/readyz")
def readyz() -> ResponseReturnValue:
    """200 when the store and the broker answer and the inbox backlog is young; else 503."""
    state = _state()
    checks = {"store": _check(lambda: state.store.health.ping()),
              "broker": _check(lambda: _broker_answers(state.settings.celery_broker_url)),
              "backlog": _backlog_check(state), "inbox": _inbox_check(state),
              **_component_checks(state)}
    failed = sorted(name for name, result in checks.items() if result != "ok")
    body = {"status": "ready" if not failed else "not ready", "failed": failed, "checks": checks,
            "paused_accounts": _paused_accounts(state)}
    return jsonify(body), 200 if not failed else 503


def _check(probe) -> str:
    try:
        probe()
    except Exception as exc:  # any failure to answer is the answer; its type says which
        return f"failed: {type(exc).__name__}"
    return "ok"


def _broker_answers(url: str) -> None:
    with Connection(url, connect_timeout=PROBE_TIMEOUT, transport_options={
            "socket_timeout": PROBE_TIMEOUT, "socket_connect_timeout": PROBE_TIMEOUT}) as connection:
        connection.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT)


def _inbox_check(state: WebState) -> str:
    try:
        state.inbox.counts()
    except sqlite3.DatabaseError as exc:
        return _inbox_problem(state, exc)
    return "ok"


def _backlog_check(state: WebState) -> str:
    try:
        oldest = state.inbox.oldest_unpublished()
    except sqlite3.DatabaseError as exc:
        return _inbox_problem(state, exc)
    age = 0.0 if oldest is None else time.time() - oldest
    limit = state.settings.web.ready_backlog_seconds
    return "ok" if age <= limit else f"failed: the oldest unpublished delivery is {age:.0f}s old"


def _component_checks(state: WebState) -> dict[str, str]:
    """The supervised parts that are restarting (a crash-looping worker, say), under `run`."""
    return {f"component {part.name}": "ok" if part.state == "running" else f"failed: {part.summary()}"
            for part in read_board(board_path(state.settings))}


def _paused_accounts(state: WebState) -> list[str]:
    try:
        return [a.page_id for a in state.settings.accounts if state.store.accounts.paused(a.page_id)]
    except Exception:  # the store is down: the store check says so
        return []


@probes.get("/metrics")
def metrics() -> ResponseReturnValue:
    """Prometheus text: the counters of every process, and the inbox and account gauges."""
    registry = CollectorRegistry()
    if os.environ.get(environment.METRICS_DIR):
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    state = _state()
    payload = generate_latest(registry) + generate_latest(_GaugeRegistry(state))
    return Response(payload, mimetype=CONTENT_TYPE_LATEST)


class _GaugeRegistry(CollectorRegistry):
    """Gauges read at scrape time: nothing to keep in step across processes."""

    def __init__(self, state: WebState):
        super().__init__(auto_describe=False)
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The inbox backlog and the paused accounts."""
        try:
            backlog = self.state.inbox.counts()["unpublished"]
        except sqlite3.DatabaseError as exc:  # /healthz and /readyz say why
            _inbox_problem(self.state, exc)
        else:
            yield GaugeMetricFamily("inbox_relay_inbox_backlog", "Accepted deliveries not yet on "
                                    "the broker", value=backlog)
        yield GaugeMetricFamily("inbox_relay_accounts_paused", "Accounts paused for an invalid token",
                                value=len(_paused_accounts(self.state)))
        yield _token_expiry(self.state)


def _token_expiry(state: WebState) -> GaugeMetricFamily:
    """Seconds until each Instagram Login token expires, as far as a refresh has told."""
    gauge = GaugeMetricFamily("inbox_relay_token_expiry_seconds", "Seconds until an Instagram Login "
                              "account's token expires (known once refreshed)", labels=["account"])
    for account in state.settings.accounts:
        try:
            expires_at = (token_state(state.store, account) or {}).get("expires_at")
        except Exception:  # the store is down: /readyz says so
            return gauge
        if expires_at:
            gauge.add_metric([account.page_id], float(expires_at) - time.time())
    return gauge
