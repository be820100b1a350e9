"""The built-in log, http and python handlers, the http one against a real local HTTP server."""

from __future__ import annotations

import base64
import json
import logging
import socket
import textwrap
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from workers.delivery.handlers.http import HttpHandler
from workers.delivery.handlers.log import LogHandler
from workers.delivery.handlers.python import PythonHandler
from workers.delivery.plugins import load_handlers
from workers.errors import HandlerRejected, HandlerRetryable, PluginError
from workers.ingest.parse import parse_envelope
from workers.records import Event
from workers.runtime.config import settings_from_dict

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
BODY_MARKER = "RESPONSE-BODY-MARKER-5d1f"


def make_event(text: str = "hello") -> Event:
    """A message event whose raw item and hydrated message both carry `text`."""
    envelope = {"object": "page", "entry": [{"id": "111", "time": 1, "messaging": [{
        "sender": {"id": "222"}, "recipient": {"id": "111"}, "timestamp": 1700000000000,
        "message": {"mid": "m_1", "text": text}}]}]}
    event = parse_envelope(envelope)[0]
    return event.replace(hydration="complete", message={"id": "m_1", "message": text})


def settings_with(handler: dict):
    return settings_from_dict({"meta": {"app_secrets": ["s"], "verify_token": "t"},
                               "handlers": [handler]}, env={})


# -- a real webhook receiver ------------------------------------------------------------------
class Receiver(ThreadingHTTPServer):
    """Verifies each POST with standardwebhooks, records it, answers as `mode` says."""

    daemon_threads = True

    def __init__(self, secret: str | None):
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.secret, self.mode = secret, 200
        self.requests: list[dict] = []
        self.release = threading.Event()  # a "slow" answer waits for this, set at teardown

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook?token=query-secret"


class _ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server = self.server
        assert isinstance(server, Receiver)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = dict(self.headers.items())
        verified = None
        if server.secret:
            try:
                Webhook(server.secret).verify(body, headers)
                verified = True
            except Exception:
                verified = False
        server.requests.append({"body": body, "headers": headers, "verified": verified})
        if server.mode == "slow":
            server.release.wait(10)
        status = 401 if verified is False else (200 if server.mode == "slow" else server.mode)
        self.send_response(status)
        if status in (301, 302, 307):
            self.send_header("Location", "/elsewhere")
        payload = BODY_MARKER.encode()
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver():
    server = Receiver(SECRET)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", [200, 202, 204])
def test_http_2xx_is_success_and_the_request_is_signed(receiver, status):
    receiver.mode = status
    handler = HttpHandler(name="out", url=receiver.url, secret=SECRET, headers={"X-Team": "ops"})
    event = make_event()
    handler.handle(event)  # returns None; raises on a failure
    [request] = receiver.requests
    assert request["verified"] is True
    assert json.loads(request["body"]) == event.to_dict()
    assert request["headers"]["webhook-id"] == event.id
    assert request["headers"]["X-Team"] == "ops"
    assert request["headers"]["Content-Type"] == "application/json"


def test_http_receiver_rejects_a_wrong_signature(receiver):
    handler = HttpHandler(name="out", url=receiver.url, secret=OTHER_SECRET)
    with pytest.raises(HandlerRejected, match="401"):
        handler.handle(make_event())
    assert receiver.requests[0]["verified"] is False


def test_http_without_secret_sends_id_and_timestamp_but_no_signature(receiver):
    receiver.secret = None
    HttpHandler(name="out", url=receiver.url).handle(make_event())
    headers = receiver.requests[0]["headers"]
    assert headers["webhook-id"] and headers["webhook-timestamp"].isdigit()
    assert "webhook-signature" not in headers


@pytest.mark.parametrize("status, expected", [
    *((status, HandlerRetryable) for status in (500, 502, 503, 429, 408)),
    *((status, HandlerRejected) for status in (400, 403, 404, 410, 422, 302)),
])
def test_http_failures_retry_or_reject_by_status(receiver, status, expected):
    receiver.mode = status
    with pytest.raises(expected) as caught:
        HttpHandler(name="out", url=receiver.url, secret=SECRET).handle(make_event())
    assert type(caught.value) is expected and str(status) in str(caught.value)
    assert BODY_MARKER not in str(caught.value)
    assert "query-secret" not in str(caught.value)
    assert len(receiver.requests) == 1  # the pipeline retries (not the session); no redirect followed


def test_http_timeout_asks_for_a_retry(receiver):
    receiver.mode = "slow"
    handler = HttpHandler(name="out", url=receiver.url, secret=SECRET, timeout=0.3)
    with pytest.raises(HandlerRetryable, match="no answer within"):
        handler.handle(make_event())


def test_http_connection_refused_asks_for_a_retry():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    handler = HttpHandler(name="out", url=f"http://127.0.0.1:{port}/hook", secret=SECRET, timeout=2)
    with pytest.raises(HandlerRetryable):
        handler.handle(make_event())


@pytest.mark.parametrize("secret, reason", [
    ("not-a-secret", "whsec_"),
    ("whsec_***not base64***", "base64"),
    ("whsec_" + base64.b64encode(b"short").decode(), "at least 24"),
    ("whsec_", "at least 24"),
])
def test_http_malformed_secret_is_refused_at_construction(secret, reason):
    with pytest.raises(ValueError, match=reason):
        HttpHandler(name="out", url="http://127.0.0.1:9/x", secret=secret)


def test_http_unpadded_secret_is_accepted():
    unpadded = SECRET.rstrip("=")
    assert unpadded != SECRET
    HttpHandler(name="out", url="http://127.0.0.1:9/x", secret=unpadded)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com/hook", "http://"])
def test_http_bad_url_is_refused(url):
    with pytest.raises(ValueError, match="url"):
        HttpHandler(name="out", url=url)


def test_http_loads_through_the_entry_point(receiver):
    loaded = load_handlers(settings_with({"type": "http", "name": "out", "url": receiver.url,
                                          "secret": SECRET, "timeout": 5}))
    loaded["out"].handler.handle(make_event())
    assert receiver.requests[0]["verified"] is True
    with pytest.raises(PluginError, match=r"handler 'out'.*secret"):
        load_handlers(settings_with({"type": "http", "name": "out", "url": receiver.url,
                                     "secret": "whsec_short"}))


# -- python ------------------------------------------------------------------------------------
@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """A freshly named module on sys.path with a few targets."""
    name = f"plugin_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        from workers.errors import HandlerRejected
        received = []
        not_callable = 3
        def take(event):
            received.append(event.id)
        def refuse(event):
            raise HandlerRejected("no thanks")
        class Box:
            @staticmethod
            def take(event):
                received.append(("box", event.kind))
    """))
    (tmp_path / f"{name}_broken.py").write_text("raise RuntimeError('broken at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_python_calls_the_target(plugin_module):
    import importlib

    event = make_event()
    PythonHandler(name="py", target=f"{plugin_module}:take").handle(event)
    PythonHandler(name="py", target=f"{plugin_module}:Box.take").handle(event)
    assert importlib.import_module(plugin_module).received == [event.id, ("box", "message")]


def test_python_target_errors_propagate(plugin_module):
    with pytest.raises(HandlerRejected, match="no thanks"):
        PythonHandler(name="py", target=f"{plugin_module}:refuse").handle(make_event())


@pytest.mark.parametrize("target, reason", [
    ("no_colon_here", "expected 'module:function'"),
    (":take", "expected 'module:function'"),
    ("MOD:", "expected 'module:function'"),
    ("inbox_relay_no_such_module_x:take", "cannot import"),
    ("MOD:missing", "no attribute"),
    ("MOD:not_callable", "not callable"),
    ("MOD_broken:take", "RuntimeError: broken at import"),
])
def test_python_bad_targets_are_clear_errors(plugin_module, target, reason):
    with pytest.raises(ValueError, match=reason):
        PythonHandler(name="py", target=target.replace("MOD", plugin_module))


def test_python_loads_through_the_entry_point(plugin_module):
    loaded = load_handlers(settings_with({"type": "python", "target": f"{plugin_module}:take"}))
    assert loaded["python"].handler.name == "python"
    with pytest.raises(PluginError, match="cannot import"):
        load_handlers(settings_with({"type": "python", "target": "inbox_relay_nope:take"}))


# -- log ---------------------------------------------------------------------------------------
def test_log_handler_logs_ids_but_never_text(caplog):
    marker = f"SECRET-TEXT-{uuid.uuid4().hex}"
    event = make_event(marker)
    assert marker in json.dumps(event.to_dict())  # the marker is really in the event
    caplog.set_level(logging.INFO, logger="workers.delivery.handlers.log")
    LogHandler(name="log").handle(event)
    [record] = caplog.records
    line = record.getMessage()
    for value in (event.id, event.kind, event.platform, event.account_id, event.mid, event.hydration):
        assert value in line
    assert marker not in caplog.text
    assert marker not in repr(vars(record))  # nor in args or extra attributes


def test_log_handler_level_is_validated_and_used(caplog):
    with pytest.raises(ValueError, match="level"):
        LogHandler(name="log", level="loud")
    caplog.set_level(logging.DEBUG, logger="workers.delivery.handlers.log")
    LogHandler(name="log", level="warning").handle(make_event())
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


def test_log_loads_through_the_entry_point():
    loaded = load_handlers(settings_with({"type": "log", "kinds": ["message"]}))
    assert isinstance(loaded["log"].handler, LogHandler)
    assert loaded["log"].accepts("message") and not loaded["log"].accepts("read")
