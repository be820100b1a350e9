"""The `http` handler's timeout is a total deadline per attempt, against real local servers that
accept a connection and never answer, or trickle their answer a byte at a time."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.unit.test_handlers_builtin import make_event
from workers.delivery.handlers.http import HttpHandler
from workers.errors import HandlerRetryable


class Silent:
    """A TCP server on 127.0.0.1 that accepts connections and sends `answer` one byte every
    `every` seconds (never, when `answer` is empty), until stopped."""

    def __init__(self, answer: bytes = b"", every: float = 0.1):
        self.answer, self.every = answer, every
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.stopped, self.accepted = threading.Event(), 0
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            self.connections.append(conn)
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        for byte in self.answer:
            if self.stopped.wait(self.every):
                return
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                return

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def silent():
    servers: list[Silent] = []

    def make(**kwargs) -> Silent:
        servers.append(Silent(**kwargs))
        return servers[-1]
    yield make
    for server in servers:
        server.stop()


def timed_failure(handler: HttpHandler) -> tuple[float, str]:
    started = time.monotonic()
    with pytest.raises(HandlerRetryable) as raised:
        handler.handle(make_event())
    return time.monotonic() - started, str(raised.value)


def test_an_endpoint_that_accepts_and_never_answers_fails_at_the_deadline(silent):
    server = silent()
    took, error = timed_failure(HttpHandler(url=server.url, timeout=0.5))
    assert 0.45 <= took < 1.5 and "no answer within 0.5s" in error
    assert server.accepted == 1


def test_an_endpoint_trickling_its_headers_cannot_hold_a_call_past_the_deadline(silent):
    # A byte every 0.1 s: each read is quick, so a per-read timeout alone would wait for ever.
    server = silent(answer=b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 500 + b"\r\n\r\n")
    took, error = timed_failure(HttpHandler(url=server.url, timeout=0.8))
    assert 0.75 <= took < 1.8 and "no answer within 0.8s" in error


def test_an_endpoint_trickling_its_body_cannot_hold_a_call_past_the_deadline(silent):
    headers = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n"
    server = silent(answer=headers + b"x" * 500, every=0.01)
    took, error = timed_failure(HttpHandler(url=server.url, timeout=1.0))
    assert 1.0 <= took < 2.0 and "no answer within 1s" in error


def test_connect_timeout_must_be_positive():
    with pytest.raises(ValueError, match="connect_timeout"):
        HttpHandler(url="http://127.0.0.1:9/hook", connect_timeout=0)
