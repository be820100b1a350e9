"""`inbox-relay playground`: a newcomer sees a hydrated message and a finished sync without Meta."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from tests.cli_run import cli
from tests.harness import ROOT, free_port, read_jsonl, wait_for
from workers.playground.seed import HISTORY, LOGIN_ID, PAGE_ID


def test_the_playground_hydrates_test_messages_and_syncs_its_history(tmp_path):
    port = free_port()
    log = tmp_path / "playground.log"
    with open(log, "wb") as out:
        playground = subprocess.Popen([sys.executable, "-m", "workers.cli", "playground", "--dir",
                                       str(tmp_path / "pg"), "--port", str(port)],
                                      cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    config = tmp_path / "pg" / "inbox-relay.toml"
    try:
        wait_for(lambda: "inbox-relay ready" in log.read_text(), timeout=60, message=f"ready ({log})")
        to = ("--to", f"http://127.0.0.1:{port}/webhook")
        for platform in ("messenger", "instagram"):
            sent = cli("send-test-event", "text", "--wait", "--platform", platform, "--config", str(config),
                       *to, cwd=tmp_path)
            assert sent.returncode == 0, sent.stderr
            record = json.loads(sent.stdout.strip().splitlines()[-1])
            assert (record["hydration"], record["platform"]) == ("complete", platform)
            assert record["conversation_id"] and record["message"]["from"]["id"] == record["sender_id"]
        sent = cli("send-test-event", "text", "--wait", "--platform", "instagram", "--account", LOGIN_ID,
                   "--config", str(config), *to, cwd=tmp_path)  # the account without a Page
        assert sent.returncode == 0, sent.stderr
        record = json.loads(sent.stdout.strip().splitlines()[-1])
        assert (record["hydration"], record["account_id"]) == ("complete", LOGIN_ID)
        synced = cli("sync", "--account", PAGE_ID, "--config", str(config), cwd=tmp_path)
        assert synced.returncode == 0, synced.stderr
        summary = json.loads(synced.stdout.strip().splitlines()[-1])
        assert summary["new_messages"] >= sum(len(lines) for lines in HISTORY.values())
        synced = cli("sync", "--account", LOGIN_ID, "--config", str(config), cwd=tmp_path)
        assert synced.returncode == 0, synced.stderr
        assert json.loads(synced.stdout.strip().splitlines()[-1])["new_messages"] >= 3
        events = tmp_path / "pg" / "var" / "events.jsonl"
        wait_for(lambda: {r["source"] for r in read_jsonl(events)} >= {"webhook", "sync"}, timeout=30,
                 message="webhook and sync events in the jsonl file")
    finally:
        playground.send_signal(signal.SIGINT)
        assert playground.wait(40) == 0, log.read_text()[-3000:]
