"""gunicorn pieces: a gevent worker that drops silent clients, and an access log that escapes input.

A sync worker is held by one slow client for as long as it trickles; gevent serves thousands of
connections per process, so slow or idle clients cost a greenlet each and delay nobody else.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import gevent
from gunicorn.glogging import Logger
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

from workers.runtime import logs

READ_TIMEOUT = 10.0  # seconds a client may stay silent while we wait for its request


class ReadTimeoutGeventWorker(GeventWorker):
    """gunicorn's gevent worker, with a timeout on every read from a client."""

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        """Serve one connection; a client silent for READ_TIMEOUT seconds is disconnected."""
        # GeventWorker.handle would make the socket blocking without a timeout: skip to its base.
        client.settimeout(READ_TIMEOUT)
        AsyncWorker.handle(self, listener, client, addr)

    def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        """Serve one request, then let every other connection have its turn.

        A keep-alive client that sends its next request at once would otherwise find it already
        readable and be served again and again while other connections wait: with 16 connections,
        gunicorn's gevent worker answered half in under 1 ms and a tenth only after 100 ms or more.
        """
        try:
            return super().handle_request(*args, **kwargs)
        finally:
            gevent.idle()  # resumes once the loop has nothing else ready


class EscapingLogger(Logger):
    """Access-log atoms with control characters escaped, so a request cannot forge log lines;
    lines formatted as `--log-format` asks."""

    def setup(self, cfg: Any) -> None:
        """gunicorn's handlers, with our formatter; our own loggers (root) alike."""
        super().setup(cfg)
        logs.configure()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(logs.formatter())

    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        """Every request but accepted deliveries, which the inbox records (`deliveries list`) and
        /metrics counts: a line each would cost a write per delivery. `--log-level debug` logs them."""
        accepted = req.method == "POST" and status_code(resp) == 200
        if accepted and not self.error_log.isEnabledFor(logging.DEBUG):
            return
        super().access(resp, req, environ, request_time)

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        """gunicorn's atoms, every text escaped."""
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: escape(value) if isinstance(value, str) else value for key, value in atoms.items()}

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """A client that went silent is routine: one line, not a traceback."""
        if isinstance(sys.exc_info()[1], TimeoutError):
            self.info("closed a connection silent for %.0fs", READ_TIMEOUT)
            return
        super().exception(msg, *args, **kwargs)


def status_code(resp: Any) -> int | None:
    """The status of a response, also of the one gunicorn builds for a request it refuses (400
    for a malformed Content-Length, say), which has only its status line: reading `status_code`
    there raised, and the refusal became a 500."""
    code = getattr(resp, "status_code", None)
    if code is None and isinstance(getattr(resp, "status", None), str):
        head = resp.status.split(" ", 1)[0]
        code = int(head) if head.isdigit() else None
    return code


def escape(text: str) -> str:
    """`text` with control characters (newlines included) as backslash escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
