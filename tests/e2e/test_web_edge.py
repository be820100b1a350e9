"""The web edge under the real server (`inbox-relay run`): framing, limits, slow clients, the log."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from tests.harness import SECRET, RelayProcess, wait_for, write_config
from webhook_app.signature import sign

LIMIT = 4096


@pytest.fixture(scope="module")
def relay():
    relay = RelayProcess(lambda d: write_config(d / "c.toml", graph_url="http://127.0.0.1:9", accounts=[],
                                                extra={"web": {"max_body_bytes": LIMIT}}))
    relay.start()
    yield relay
    relay.cleanup()


def _connect(relay: RelayProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", relay.port), timeout=10)


def _status(sock: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(1024)
        if not chunk:
            break
        head += chunk
    return int(head.split(b" ")[1]) if head else 0


def _chunked(relay: RelayProcess, body: bytes, chunks: bytes) -> int:
    with _connect(relay) as sock:
        sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\nX-Hub-Signature-256: " + sign(SECRET, body).encode()
                     + b"\r\n\r\n" + chunks)
        return _status(sock)


def _envelope(size: int = 0) -> bytes:
    return json.dumps({"object": "page", "entry": [], "pad": "x" * size}).encode()


def test_a_chunked_delivery_is_accepted(relay):
    body = _envelope()
    half = len(body) // 2
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:]))
    assert _chunked(relay, body, chunks + b"0\r\n\r\n") == 200


def test_a_chunked_body_over_the_limit_is_413(relay):
    body = _envelope(LIMIT * 2)
    assert _chunked(relay, body, b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)) == 413


def test_bad_chunk_framing_is_400(relay):
    body = _envelope()
    assert _chunked(relay, body, b"zz\r\n" + body + b"\r\n0\r\n\r\n") == 400


MALFORMED_FRAMING = {
    "negative length": b"Content-Length: -1\r\n",
    "length not a number": b"Content-Length: abc\r\n",
    "length with a sign": b"Content-Length: +2\r\n",
    "a list of lengths": b"Content-Length: 2, 2\r\n",
    "two lengths": b"Content-Length: 2\r\nContent-Length: 3\r\n",
    "the same length twice": b"Content-Length: 2\r\nContent-Length: 2\r\n",
    "chunked and a length": b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n",
    "unknown transfer coding": b"Transfer-Encoding: gzip\r\n",
    "chunked twice": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    "a space before the colon": b"Content-Length : 2\r\n",
    "a NUL in a header": b"X-Anything: a\x00b\r\nContent-Length: 2\r\n",
}


@pytest.mark.parametrize("headers", MALFORMED_FRAMING.values(), ids=MALFORMED_FRAMING.keys())
def test_malformed_framing_through_the_real_server_is_400(relay, headers):
    # gunicorn refuses these before the app sees them; its refusal must stay a 400, not a 500.
    with _connect(relay) as sock:
        sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n{}")
        assert _status(sock) == 400
    with _connect(relay) as sock:  # and the server goes on serving
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _status(sock) == 200


def test_hundreds_of_slow_clients_do_not_hold_deliveries_back(relay):
    slow = []
    try:
        for _ in range(300):
            sock = _connect(relay)  # each sends half a body, then nothing
            sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"entry\"")
            slow.append(sock)
        for n in range(5):
            body = json.dumps({"object": "page", "entry": [], "n": n}).encode()
            started = time.monotonic()
            assert relay.post(body)[0] == 200
            assert time.monotonic() - started < 1.0
    finally:
        for sock in slow:
            sock.close()


def test_a_request_cannot_forge_access_log_lines(relay):
    with _connect(relay) as sock:
        sock.sendall(b"GET /webhook%0aFORGED-LINE HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _status(sock) == 404
    wait_for(lambda: "FORGED-LINE" in relay.log.read_text(), message="the request in the access log")
    lines = relay.log.read_text().splitlines()
    assert not [line for line in lines if line.startswith("FORGED-LINE")]
    assert [line for line in lines if "/webhook\\nFORGED-LINE" in line]


def test_accepted_deliveries_stay_out_of_the_access_log_other_requests_do_not(relay):
    body = json.dumps({"object": "page", "entry": [], "access-log-check": 1}).encode()
    assert relay.post(body)[0] == 200
    assert relay.post(body, secret="wrong-secret")[0] == 403
    wait_for(lambda: '"POST /webhook" 403' in relay.log.read_text(), message="the 403 in the access log")
    assert '"POST /webhook" 200' not in relay.log.read_text()


def test_concurrent_deliveries_are_each_recorded_once(relay):
    from concurrent.futures import ThreadPoolExecutor

    from workers.crypto import Codec
    from workers.inbox.database import INBOX_FILE, Inbox

    bodies = [json.dumps({"object": "page", "entry": [], "concurrent": n}).encode() for n in range(300)]
    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(lambda body: relay.post(body)[0], bodies)) == {200}
    inbox = Inbox(relay.dir / "var" / INBOX_FILE)
    codec = Codec(((relay.dir / "var" / "encryption.key").read_text().strip(),))
    recorded = [codec.open(d.body) for d in inbox.list(limit=5000)]
    assert sorted(body for body in recorded if b"concurrent" in body) == sorted(bodies)


def test_the_worker_runs_at_a_lower_priority_than_the_web_tier(relay):
    from pathlib import Path

    def run_by_this_relay(pid: str) -> bool:
        try:
            environment = Path(f"/proc/{pid}/environ").read_bytes()
            return f"INBOX_RELAY_CONFIG={relay.config.resolve()}".encode() in environment
        except OSError:
            return False

    mine = [pid for pid in os.listdir("/proc") if pid.isdigit() and run_by_this_relay(pid)]
    commands = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in mine}
    workers = [pid for pid, command in commands.items() if b"celery" in command]
    web = [pid for pid, command in commands.items() if b"gunicorn" in command]
    assert workers and web
    assert {os.getpriority(os.PRIO_PROCESS, int(pid)) for pid in workers} == {19}
    assert {os.getpriority(os.PRIO_PROCESS, int(pid)) for pid in web} == {0}
