"""Handler plugins end to end on real components: `inbox-relay run` (gunicorn, relay, Celery worker,
broker) with several handlers at once, on the private Redis and on the machine's Redis.

One system per broker serves every test of this module; each test uses its own customer ids, so
its events, queues and marker files are its own. Handlers are narrowed by `kinds` so that a
deliberately failing one only sees the events of the test about it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.harness import ROOT, GraphBackedRelay, present, read_jsonl, redis_url, wait_for
from workers.ingest.parse import parse_envelope
from workers.playground.graph_world import GraphWorld
from workers.records import DeliveryQueue, Event

PAGE = "3100000000000001"
TOKEN = f"token-{PAGE}"
HTTP_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
FAST = {"hydration": {"coalesce_seconds": 0.5}}


# -- a receiver for the `http` handler -------------------------------------------------------------
class Receiver:
    """An HTTP server on 127.0.0.1 that verifies Standard Webhooks signatures and records requests.

    It answers 500 to the first verified request for each webhook-id and 200 to later ones; a
    request that fails verification gets 400 (the handler then dead-letters the event).
    """

    def __init__(self, secret: str):
        self.verifier = Webhook(secret)
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.answer(body, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, body: bytes, headers: dict) -> int:
        try:
            event = self.verifier.verify(body, headers)
            verified = True
        except WebhookVerificationError:
            event, verified = None, False
        webhook_id = {k.lower(): v for k, v in headers.items()}.get("webhook-id")
        with self.lock:
            seen = any(r["webhook_id"] == webhook_id and r["verified"] for r in self.requests)
            status = 400 if not verified else (200 if seen else 500)
            self.requests.append({"webhook_id": webhook_id, "verified": verified, "status": status,
                                  "event": event, "at": time.monotonic()})
        return status

    def requests_for(self, webhook_id: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["webhook_id"] == webhook_id]


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver(HTTP_SECRET)
    receiver.thread.start()
    yield receiver
    receiver.httpd.shutdown()
    receiver.httpd.server_close()


# -- one running system per broker ------------------------------------------------------------------
def _handlers(receiver: Receiver) -> list[dict]:
    return [
        {"type": "jsonl", "name": "jsonl", "path": "var/events.jsonl"},
        {"type": "python", "name": "always_fail", "target": "tests.user_handlers:always_fail",
         "kinds": ["message"], "max_attempts": 50},
        {"type": "python", "name": "flaky", "target": "tests.user_handlers:fail_while_marked",
         "kinds": ["read"], "max_attempts": 2, "max_age": 60},
        {"type": "http", "name": "http", "url": receiver.url, "secret": HTTP_SECRET, "timeout": 5,
         "kinds": ["postback"]},
        {"type": "print_kinds", "name": "kinds", "path": "var/kinds.txt"},
        {"type": "print_kinds", "name": "reactions", "path": "var/reactions.txt", "kinds": ["reaction"]},
        {"type": "python", "name": "die_once", "target": "tests.user_handlers:die_once",
         "kinds": ["delivery"]},
    ]


@pytest.fixture(scope="module", params=["embedded", "redis"])
def system(request, receiver):
    world = GraphWorld()
    world.add_account(PAGE, TOKEN)
    broker = redis_url(8) if request.param == "redis" else ""
    relay = GraphBackedRelay(world, [{"page_id": PAGE, "access_token": TOKEN}], broker_url=broker,
                             extra=FAST, handlers=_handlers(receiver))
    with relay as running:
        running.store = running.open_store()
        yield running


# -- building deliveries and reading results ------------------------------------------------------
def _user(tag: str) -> str:
    return f"u-{tag}-{uuid.uuid4().hex[:10]}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _item(user: str, timestamp: int, **body) -> dict:
    return {"sender": {"id": user}, "recipient": {"id": PAGE}, "timestamp": timestamp, **body}


def _envelope(*items: dict) -> bytes:
    envelope = {"object": "page", "entry": [{"id": PAGE, "time": _now_ms(), "messaging": list(items)}]}
    return json.dumps(envelope).replace("/", "\\/").encode()


def _events(body: bytes) -> list[Event]:
    return parse_envelope(json.loads(body))


def _ids(records: list[dict], wanted) -> list[str]:
    """The ids of `records` that are in `wanted`, in file order (repeats kept)."""
    wanted = set(wanted)
    return [r["id"] for r in records if r["id"] in wanted]


def _file_records(system, name: str) -> list[dict]:
    return read_jsonl(system.dir / "var" / name)


def _kind_lines(system, name: str) -> list[str]:
    path = system.dir / "var" / name
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _idle(system, handler: str, event: Event) -> bool:
    """Whether `handler`'s queue for this event's conversation is empty (all moved on)."""
    return system.store.queues.length(DeliveryQueue.of(handler, event).name) == 0


def _cli(system, *args: str) -> str:
    """Run `inbox-relay ...` against the system's configuration; returns its stdout."""
    command = [sys.executable, "-m", "workers.cli", *args, "--config", str(system.config)]
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


# -- the tests ------------------------------------------------------------------------------------
def test_a_failing_handler_holds_up_no_other(system):
    user = _user("order")
    base = _now_ms() - 60_000
    offsets = [4, 0, 3, 1, 2]  # one delivery, out of timestamp order
    for offset in sorted(offsets):
        system.world.add_message(PAGE, "messenger", user, f"m-{user}-{offset}", text=f"text {offset}",
                                 created=(base + offset * 1000) / 1000)
    body = _envelope(*[_item(user, base + o * 1000, message={"mid": f"m-{user}-{o}", "text": f"text {o}"})
                       for o in offsets])
    events = sorted(_events(body), key=lambda e: present(e.timestamp))
    expected = [e.id for e in events]
    assert system.post(body)[0] == 200

    # Promptly: the failing handler's first retry alone may come 0.5 to 1 s after its first try.
    wait_for(lambda: set(expected) <= set(_ids(system.events(), expected)), timeout=8,
             message="jsonl to get every message within 8 s")
    records = [r for r in system.events() if r["id"] in set(expected)]
    assert [r["id"] for r in records] == expected, "not once each in timestamp order"
    assert {r["hydration"] for r in records} == {"complete"}

    # Meanwhile the failing handler holds every one of them and keeps retrying the oldest.
    failing = DeliveryQueue.of("always_fail", events[0]).name
    # (The last enqueue for always_fail may trail jsonl's delivery of that event by a moment.)
    wait_for(lambda: system.store.queues.length(failing) == len(expected), timeout=5,
             message="always_fail to hold every message")
    wait_for(lambda: len(_ids(_file_records(system, "always_fail.jsonl"), expected[:1])) >= 2,
             timeout=10, message="always_fail to be retried")
    tried = _ids(_file_records(system, "always_fail.jsonl"), expected)
    assert set(tried) == {expected[0]}, "a newer event jumped the failing one's queue"
    assert system.store.queues.length(failing) == len(expected)
    assert not [letter for letter in system.store.dead_letters.all() if letter.handler == "always_fail"]
    assert _ids(system.events(), expected) == expected, "jsonl got an event again"


def _letters_for(letters: list[dict], event: Event) -> list[dict]:
    return [letter for letter in letters if letter["event"]["id"] == event.id]


def test_retries_then_dead_letter_then_replay_through_the_cli(system):
    user = _user("flaky")
    marker = system.dir / "var" / f"fail-{user}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    body = _envelope(_item(user, _now_ms(), read={"watermark": _now_ms()}))
    [event] = _events(body)
    assert system.post(body)[0] == 200

    wait_for(lambda: _ids(system.events(), [event.id]), timeout=10, message="the event at jsonl")
    wait_for(lambda: _letters_for([letter.to_dict() for letter in system.store.dead_letters.all()], event),
             timeout=15, message="the dead letter")
    [letter] = _letters_for(json.loads(_cli(system, "dead-letters", "list", "--json")), event)
    assert letter["handler"] == "flaky" and letter["attempts"] == 2
    assert letter["error"].startswith("RuntimeError: marker present") and user in letter["error"]
    assert letter["failed_at"] - letter["first_failed_at"] >= 0.4, "no backoff between the attempts"
    assert letter["event"]["kind"] == "read" and "raw" not in letter["event"]
    assert not _ids(_file_records(system, "flaky.jsonl"), [event.id])
    assert _ids(system.events(), [event.id]) == [event.id], "jsonl must not wait for flaky"

    marker.unlink()
    assert "replayed" in _cli(system, "dead-letters", "replay", "--all")
    wait_for(lambda: _ids(_file_records(system, "flaky.jsonl"), [event.id]), timeout=15,
             message="the replayed event at flaky")
    assert not _letters_for(json.loads(_cli(system, "dead-letters", "list", "--json")), event)
    wait_for(lambda: _idle(system, "flaky", event), message="flaky's queue to empty")
    assert _ids(_file_records(system, "flaky.jsonl"), [event.id]) == [event.id]
    assert _ids(system.events(), [event.id]) == [event.id], "a dead-letter replay is for its handler alone"


def test_http_handler_is_signed_and_retried_after_a_500(system, receiver):
    user = _user("http")
    body = _envelope(_item(user, _now_ms(), postback={"title": "Start", "payload": "GO",
                                                      "mid": f"m-pb-{user}"}))
    [event] = _events(body)
    assert system.post(body)[0] == 200

    wait_for(lambda: [r for r in receiver.requests_for(event.id) if r["status"] == 200], timeout=15,
             message="the http handler to be accepted")
    wait_for(lambda: _idle(system, "http", event), message="the http queue to empty")
    requests = receiver.requests_for(event.id)
    assert [r["status"] for r in requests] == [500, 200], requests
    assert all(r["verified"] for r in requests)
    assert requests[1]["at"] - requests[0]["at"] >= 0.4, "retried without backoff"
    sent = requests[1]["event"]
    assert sent["id"] == event.id and sent["kind"] == "postback" and sent["sender_id"] == user
    assert sent["raw"] == event.raw
    assert not [letter for letter in system.store.dead_letters.all() if letter.handler == "http"]


def test_example_plugin_print_kinds_receives_events(system):
    user = _user("kinds")
    stamp = _now_ms()
    body = _envelope(_item(user, stamp, reaction={"mid": f"m-{user}", "action": "react", "reaction": "love"}),
                     _item(user, stamp + 1, optin={"ref": "promo"}))
    reaction, optin = _events(body)
    assert (reaction.kind, optin.kind) == ("reaction", "optin")
    assert system.post(body)[0] == 200

    wanted = [f"{reaction.id} reaction", f"{optin.id} optin"]
    wait_for(lambda: set(wanted) <= set(_kind_lines(system, "kinds.txt")), timeout=10,
             message="print_kinds lines")
    wait_for(lambda: _idle(system, "reactions", reaction) and _idle(system, "kinds", reaction),
             message="the plugins' queues to empty")
    assert [line for line in _kind_lines(system, "kinds.txt") if line in wanted] == wanted
    # The second instance takes only what its `kinds` option names.
    ours = (reaction.id, optin.id)
    assert [line for line in _kind_lines(system, "reactions.txt") if line.split()[0] in ours] == \
        [f"{reaction.id} reaction"]


def test_a_handler_killed_mid_delivery_still_gets_the_event(system):
    user = _user("die")
    stamp = _now_ms()
    body = _envelope(_item(user, stamp, delivery={"mids": [f"m-{user}"], "watermark": stamp}))
    [event] = _events(body)
    assert event.kind == "delivery"
    assert system.post(body)[0] == 200

    marker = system.dir / "var" / f"died-{event.id}"
    wait_for(lambda: marker.exists() and marker.read_text(), timeout=10, message="the first attempt")
    pid = int(marker.read_text())
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
             message="the pool process to be gone")
    wait_for(lambda: _ids(_file_records(system, "survivor.jsonl"), [event.id]), timeout=30,
             message="the requeued delivery at die_once")
    wait_for(lambda: _ids(system.events(), [event.id]), message="the event at jsonl")
    wait_for(lambda: _idle(system, "die_once", event) and _idle(system, "jsonl", event),
             message="both queues to empty")
    assert _ids(_file_records(system, "survivor.jsonl"), [event.id]) == [event.id]
    assert _ids(system.events(), [event.id]) == [event.id], "jsonl got the event twice"


def test_deliveries_list_and_forced_replay(system):
    user = _user("replay")
    body = _envelope(_item(user, _now_ms(), optin={"ref": "again"}))
    [event] = _events(body)
    assert system.post(body)[0] == 200
    wait_for(lambda: _ids(system.events(), [event.id]), message="the first delivery at jsonl")

    def listed_and_published():
        listed = json.loads(_cli(system, "deliveries", "list", "--json", "--show-body", "--limit", "100"))
        found = [d for d in listed if d.get("body") == body.decode()]
        assert len(found) == 1, found
        return found[0] if found[0]["published"] else None
    delivery = wait_for(listed_and_published, timeout=10, message="the delivery listed as published")
    assert delivery["object"] == "page" and delivery["entries"] == 1 and delivery["size"] == len(body)
    assert not delivery["force"]
    plain = json.loads(_cli(system, "deliveries", "list", "--json"))
    assert delivery["id"] in [d["id"] for d in plain] and all("body" not in d for d in plain)

    output = _cli(system, "deliveries", "replay", str(delivery["id"]))
    assert f"delivery {delivery['id']} recorded again as" in output
    wait_for(lambda: len(_ids(system.events(), [event.id])) == 2, timeout=15,
             message="the forced replay at jsonl")
    line = f"{event.id} optin"
    wait_for(lambda: _kind_lines(system, "kinds.txt").count(line) == 2, timeout=15,
             message="the forced replay at print_kinds")
    listed = json.loads(_cli(system, "deliveries", "list", "--json", "--show-body", "--limit", "100"))
    copies = [d for d in listed if d.get("body") == body.decode()]
    assert sorted((d["id"] > delivery["id"], d["force"]) for d in copies) == [(False, False), (True, True)]
    wait_for(lambda: _idle(system, "jsonl", event), message="jsonl's queue to empty")
    assert len(_ids(system.events(), [event.id])) == 2


def test_forced_replay_of_a_message_delivery(system):
    user = _user("replay-msg")
    mid = f"m-{user}"
    system.world.add_message(PAGE, "messenger", user, mid, text="hello again")
    body = _envelope(_item(user, _now_ms(), message={"mid": mid, "text": "hello again"}))
    [event] = _events(body)
    assert system.post(body)[0] == 200
    wait_for(lambda: _ids(system.events(), [event.id]), message="the first delivery at jsonl")

    listed = json.loads(_cli(system, "deliveries", "list", "--json", "--show-body", "--limit", "100"))
    [delivery] = [d for d in listed if d.get("body") == body.decode()]
    _cli(system, "deliveries", "replay", str(delivery["id"]))
    wait_for(lambda: len(_ids(system.events(), [event.id])) == 2, timeout=10,
             message="the forced replay of a message at jsonl")
    assert [r["hydration"] for r in system.events() if r["id"] == event.id] == ["complete", "complete"]
