"""The event log end to end: traffic through `inbox-relay run` with a handler that succeeds and
one that always fails; then `events list --outcome dead_letter`, `events show` and `events replay`
through the command line tell the story; with the log in data_dir (SQLite) and in PostgreSQL."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from tests.e2e.test_handlers_e2e import _cli
from tests.harness import RelayProcess, wait_for, write_config
from workers.ingest.parse import parse_envelope

PAGE = "626262"
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
FAILING = {"type": "http", "name": "crm", "url": "http://127.0.0.1:9/hook", "max_attempts": 2,
           "pause_after": 0, "timeout": 2}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def system(request):
    """`inbox-relay run` with the log in data_dir, or in a PostgreSQL database of its own."""
    database = f"ir_e2e_{uuid.uuid4().hex[:10]}" if request.param == "postgresql" else None
    if database:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {database}")
    events = {"log_url": f"{POSTGRES}/{database}"} if database else {}
    relay = RelayProcess(lambda d: write_config(
        d / "c.toml", graph_url="http://127.0.0.1:9", accounts=[], extra={"events": events},
        handlers=[{"type": "jsonl", "path": "var/events.jsonl"}, FAILING]))
    relay.start()
    yield relay
    relay.cleanup()
    if database:
        with psycopg.connect(f"{POSTGRES}/{database}") as db:
            assert db.execute("SELECT COUNT(*) FROM events").fetchone() != (0,), "the log went elsewhere"
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def _read(n: int) -> bytes:
    return json.dumps({"object": "page", "entry": [{"id": PAGE, "time": n, "messaging": [
        {"sender": {"id": "u1"}, "recipient": {"id": PAGE}, "timestamp": 1_700_000_000_000 + n,
         "read": {"watermark": n}}]}]}).encode()


def _events_json(system, *args: str):
    return json.loads(_cli(system, "events", *args, "--json"))


def test_events_list_and_show_tell_which_handler_failed_and_why(system):
    body = _read(1)
    assert system.post(body)[0] == 200
    [event] = parse_envelope(json.loads(body))
    wait_for(lambda: any(r["id"] == event.id for r in system.events()), message="the jsonl record")
    dead = wait_for(lambda: _events_json(system, "list", "--outcome", "dead_letter") or None, timeout=60,
                    message="the event dead-lettered by crm, in the event log")
    assert [e["id"] for e in dead] == [event.id]
    assert dead[0]["handlers"] == {"jsonl": "success", "crm": "dead_letter"}
    assert dead[0]["kind"] == "read" and dead[0]["source"] == "webhook"
    shown = _events_json(system, "show", event.id)
    assert shown["event"]["id"] == event.id
    crm = [(a["attempt"], a["outcome"]) for a in shown["attempts"] if a["handler"] == "crm"]
    assert crm == [(1, "retry"), (2, "dead_letter")]
    assert all(a["error"] for a in shown["attempts"] if a["handler"] == "crm")
    assert _events_json(system, "list", "--handler", "jsonl", "--outcome", "success")[0]["id"] == event.id


def test_events_replay_hands_the_event_to_one_handler_again_and_logs_it(system):
    body = _read(2)
    assert system.post(body)[0] == 200
    [event] = parse_envelope(json.loads(body))
    wait_for(lambda: any(r["id"] == event.id for r in system.events()), message="the jsonl record")
    # The log is written at the end of the task that delivered it, a moment after the record.
    wait_for(lambda: event.id in {e["id"] for e in _events_json(system, "list", "--outcome", "success")},
             timeout=30, message="the event in the event log")
    assert "queued again for jsonl" in _cli(system, "events", "replay", event.id, "--handler", "jsonl")
    wait_for(lambda: sum(r["id"] == event.id for r in system.events()) == 2, timeout=30,
             message="the replayed event at jsonl a second time")
    def replayed() -> list | None:
        attempts = _events_json(system, "show", event.id)["attempts"]
        jsonl = [a["outcome"] for a in attempts if a["handler"] == "jsonl"]
        return jsonl if jsonl[-1:] == ["success"] and "pending" in jsonl else None
    assert wait_for(replayed, timeout=30, message="the replay and its delivery in the log") == [
        "success", "pending", "success"]


def test_bad_input_is_one_line(system):
    import subprocess
    import sys

    from tests.harness import ROOT

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "workers.cli", "events", *args, "--config",
                               str(system.config)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    missing = run("show", "evt_nope")
    assert missing.returncode == 1 and "no event evt_nope in the event log" in missing.stderr
    bad = run("list", "--since", "yesterday-ish")
    assert bad.returncode == 2 and "neither a time ago" in bad.stderr
    assert "Traceback" not in missing.stderr + bad.stderr
