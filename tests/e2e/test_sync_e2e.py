"""`inbox-relay sync` against a running system and the Graph stand-in, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tests.harness import ROOT, GraphBackedRelay, wait_for
from workers.playground.graph_world import GraphWorld

PAGE, TOKEN = "606060", "token-606"


def _cli(relay, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "workers.cli", *args, "--config", str(relay.config)]
    return subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)


def test_sync_brings_history_in_once_and_resumes_nothing_new():
    world = GraphWorld(calls_per_second=50)
    world.add_account(PAGE, TOKEN)
    for c in range(30):
        for m in range(23):
            world.add_message(PAGE, "messenger", f"U{c}", f"m_{c}_{m}", text=f"old {c}.{m}",
                              created=time.time() - 3600 + c * 30 + m)
    accounts = [{"page_id": PAGE, "access_token": TOKEN, "calls_per_second": 20.0}]
    with GraphBackedRelay(world, accounts) as relay:
        dry = _cli(relay, "sync", "--account", PAGE, "--dry-run")
        assert dry.returncode == 0 and "30 conversations with 690 messages" in dry.stdout
        first = _cli(relay, "sync", "--account", PAGE)
        assert first.returncode == 0, first.stderr
        assert "delivered event=" not in first.stderr, "per-event lines would bury the progress"
        summary = json.loads(first.stdout.strip().splitlines()[-1])  # not a terminal: one JSON line
        assert (summary["conversations"], summary["messages"], summary["new_messages"]) == (30, 690, 690)
        wait_for(lambda: len(relay.events()) == 690, timeout=60, message="690 synced events")
        records = relay.events()
        assert {r["source"] for r in records} == {"sync"} and len({r["id"] for r in records}) == 690
        assert sum(r["hydration"] == "complete" for r in records) == 30 * 20
        logged = _cli(relay, "events", "list", "--source", "sync", "--limit", "1000", "--json")
        assert len({e["id"] for e in json.loads(logged.stdout)}) == 690, "every synced event is logged"

        rerun = _cli(relay, "sync", "--account", PAGE)
        again = json.loads(rerun.stdout.strip().splitlines()[-1])
        assert again["new_messages"] == 0 and again["calls"] <= 2 and again["updated_since"]
        assert "reading only the conversations updated in the last" in rerun.stderr

        queued = _cli(relay, "sync", "--account", PAGE, "--background")
        assert queued.returncode == 0 and "queued" in queued.stdout
        wait_for(lambda: "sync finished" in _cli(relay, "status").stdout, timeout=60,
                 message="the background sync in status")
        assert len(relay.events()) == 690, "nothing new reached the handler"
