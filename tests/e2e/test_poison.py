"""A poison delivery fails once and stays visible; it never loops and never holds others back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

from tests.harness import ROOT, RelayProcess, present, wait_for, write_config
from workers.inbox.database import INBOX_FILE, Inbox
from workers.inbox.relay import Relay
from workers.inbox.watch import StoreWatch
from workers.ingest.parse import parse_envelope

PAGE = "515151"


def read_body(n: int) -> bytes:
    return json.dumps({"object": "page", "entry": [{"id": PAGE, "time": n, "messaging": [
        {"sender": {"id": f"u{n}"}, "recipient": {"id": PAGE}, "timestamp": 1_700_000_000_000 + n,
         "read": {"watermark": n}}]}]}).encode()


def test_the_relay_skips_a_row_it_cannot_publish(tmp_path):
    inbox = Inbox(tmp_path / INBOX_FILE)
    bad = inbox.append(b'{"entry": ["\xed\xa0\x80"]}')  # UTF-8-encoded surrogate: not text
    good = inbox.append(read_body(1))
    published: list[int] = []
    relay = Relay(inbox, lambda batch: published.extend(d.id for d, _ in batch))
    assert relay.pump() == 2
    assert published == [good]
    failed = present(inbox.get(bad))
    assert failed.failed_at and "not UTF-8" in (failed.error or "")
    assert inbox.counts() == {"unpublished": 0, "failed": 1}
    assert relay.pump() == 0, "a failed row is not tried again by itself"


def test_failures_reported_by_workers_are_marked_in_their_inbox(tmp_path, store):
    inbox = Inbox(tmp_path / INBOX_FILE)
    first, second = inbox.append(read_body(1)), inbox.append(read_body(2))
    inbox.mark_published([first, second])
    watch = StoreWatch(store, inbox)
    store.failures.record(watch.inbox_id, second, "ValueError: boom")
    store.failures.record("another-inbox", first, "ValueError: not ours")
    assert watch.collect_failures() == 1 and watch.collect_failures() == 0
    assert [d.id for d in inbox.list(failed=True)] == [second]
    assert present(inbox.get(second)).error == "ValueError: boom" and present(inbox.get(first)).error is None
    assert store.failures.total() == 2


def _cli(relay: RelayProcess, *args: str) -> str:
    command = [sys.executable, "-m", "workers.cli", *args, "--config", str(relay.config)]
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _health(relay: RelayProcess) -> dict:
    with urllib.request.urlopen(relay.url + "/healthz", timeout=5) as response:
        return json.loads(response.read())


def test_a_poison_delivery_fails_once_is_listed_and_holds_nothing_back():
    relay = RelayProcess(lambda d: write_config(d / "c.toml", graph_url="http://127.0.0.1:9", accounts=[]))
    try:
        relay.start()
        # Rows no signed request can create any more (the edge answers 400), as an older version
        # or a disk error might have left them: the worker must fail them once, not loop.
        inbox = Inbox(relay.dir / "var" / INBOX_FILE)
        poison = [inbox.append(b"not json at all"), inbox.append(b"[" * 5000 + b"]" * 5000)]
        assert relay.post(read_body(7))[0] == 200
        [event] = parse_envelope(json.loads(read_body(7)))
        wait_for(lambda: event.id in {r["id"] for r in relay.events()}, message="the good delivery")
        wait_for(lambda: _health(relay)["failed"] == 2, timeout=20, message="both poison rows failed")
        listed = json.loads(_cli(relay, "deliveries", "list", "--failed", "--json"))
        assert sorted(row["id"] for row in listed) == sorted(poison)
        assert all(row["error"] and row["failed_at"] for row in listed)
        assert relay.post(read_body(8))[0] == 200  # a round trip later, nothing was tried again
        [later] = parse_envelope(json.loads(read_body(8)))
        wait_for(lambda: later.id in {r["id"] for r in relay.events()}, message="a later delivery")
        log = relay.log.read_text()
        assert log.count("task=inbox_relay.ingest failed for good") == 2, "each fails exactly once"
        assert "failed deliveries: 2" in _cli(relay, "status")
    finally:
        relay.cleanup()


def test_a_delivery_no_worker_confirmed_is_published_again(tmp_path, store):
    inbox = Inbox(tmp_path / INBOX_FILE)
    taken, lost = inbox.append(read_body(1)), inbox.append(read_body(2))
    published: list[int] = []
    watch = StoreWatch(store, inbox)
    relay = Relay(inbox, lambda batch: published.extend(d.id for d, _ in batch), watch=watch,
                  confirm_within=0.0)
    assert relay.pump() == 2 and published == [taken, lost]
    store.intake.confirm(watch.inbox_id, taken)  # the broker lost the other one on its way
    assert watch.unconfirmed(now=time.time() + 1, confirm_within=0.0) == [lost]
    inbox.republish([lost])
    assert relay.pump() == 1 and published == [taken, lost, lost]
    assert watch.unconfirmed(now=time.time() + 1, confirm_within=0.0) == [lost], "until confirmed"
    assert present(inbox.get(taken)).error is None and watch.unconfirmed(now=time.time() - 3600,
                                                                  confirm_within=0.0) == []


def test_unconfirmed_after_the_visibility_timeout_is_published_again_only_when_the_broker_is_empty(
        tmp_path, store):
    """A worker frozen with a message it popped holds it where no visibility timeout reaches: with
    nothing queued in the broker, `stuck_after` is enough; with a backlog, `confirm_within`."""
    inbox = Inbox(tmp_path / INBOX_FILE)
    stuck = inbox.append(read_body(1))
    backlog = [5]
    relay = Relay(inbox, lambda batch: None, watch=StoreWatch(store, inbox), confirm_within=3600,
                  stuck_after=0.0, backlog=lambda: backlog[0])
    relay.pump()
    assert relay.to_publish_again(time.time() + 1) == [], "queued messages may still be ahead of it"
    backlog[0] = 0
    assert relay.to_publish_again(time.time() + 1) == [stuck]
