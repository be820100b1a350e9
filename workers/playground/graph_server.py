"""The Graph API stand-in served over real HTTP on 127.0.0.1: tests, benchmarks and the playground.

Beside Meta's paths it answers one of its own, `POST /playground/messages`: a message the stand-in
then knows, so that `send-test-event --known` can send a webhook for it and hydration find it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from workers.playground.graph_world import GraphWorld
from workers.playground.seed import KNOWN_MESSAGES, add_known_message


class FakeGraphServer:
    """Serves a GraphWorld on 127.0.0.1 (an ephemeral port unless given); a context manager."""

    def __init__(self, world: GraphWorld, *, port: int = 0):
        self.world = world
        handler = type("Handler", (_Handler,), {"world": world})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # A short poll interval: shutting down waits for the next poll.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def __enter__(self) -> FakeGraphServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    world: GraphWorld
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._respond("GET")

    def do_POST(self) -> None:
        self._respond("POST")

    def _respond(self, method: str) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = self.rfile.read(length).decode() if length else ""  # a form body, as SDKs send it
        query = {k: v[0] for k, v in parse_qs(f"{form}&{url.query}").items()}
        path = re.sub(r"^/v\d+\.\d+", "", url.path)
        bearer = self.headers.get("Authorization", "")
        token = bearer[len("Bearer "):] if bearer.startswith("Bearer ") else query.get("access_token", "")
        headers: dict[str, str] = {}
        if path == KNOWN_MESSAGES and method == "POST":
            status, body = add_known_message(self.world, token, query)
        else:
            status, body, headers = self.world.answer(path, query, token, method)
        if self.world.latency:
            time.sleep(self.world.latency)  # a stand-in for Meta's response time, not a wait for a result
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass
