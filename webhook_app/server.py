"""gunicorn pieces: a gevent worker that drops silent clients, and an access log that escapes input.

A sync worker is held by one slow client for as long as it trickles; gevent serves thousands of
connections per process, so slow or idle clients cost a greenlet each and delay nobody else.
"""

from __future__ import annotations

import sys
from typing import Any

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


def escape(text: str) -> str:
    """`text` with control characters (newlines included) as backslash escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
