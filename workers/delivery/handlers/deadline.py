"""A total deadline for one HTTP request, connect to last byte.

requests' read timeout counts per socket read: an endpoint that trickles a byte now and then
holds a call forever. Inside `Deadline(seconds)`, connections of a `DeadlineAdapter` open within
what is left of it, and a timer shuts their socket when it passes, which ends any read at once.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError

_current = threading.local()


class Deadline:
    """A context: requests made in it through a DeadlineAdapter end by `seconds` from its start."""

    def __init__(self, seconds: float):
        self.seconds, self.expired = seconds, False
        self._lock, self._sockets = threading.Lock(), list[socket.socket]()
        self._ends = time.monotonic() + seconds
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _current.deadline = None

    def left(self) -> float:
        """Seconds until the deadline."""
        return self._ends - time.monotonic()

    def watch(self, sock: socket.socket | None) -> None:
        """Shut `sock` when the deadline passes (at once if it has)."""
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if not self.expired:
                return
        _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired, sockets = True, list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv, unlike close()
    except OSError:
        pass  # already closed


def _deadline() -> Deadline | None:
    return getattr(_current, "deadline", None)


class _Watched:
    """Connect within what is left of the deadline; have the socket shut when it passes."""

    timeout: Any
    sock: socket.socket | None

    def connect(self) -> None:
        deadline = _deadline()
        if deadline is not None:
            left = deadline.left()
            if left <= 0:
                raise ConnectTimeoutError(self, "the request's deadline passed before connecting")
            if not isinstance(self.timeout, int | float) or self.timeout > left:
                self.timeout = left
        super().connect()  # type: ignore[misc]

    def getresponse(self) -> Any:
        deadline = _deadline()
        if deadline is not None:
            deadline.watch(self.sock)  # a kept-alive connection did not connect in this request
        return super().getresponse()  # type: ignore[misc]


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections honour the Deadline they are used in."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Build the pool manager with connections that know the deadline."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
