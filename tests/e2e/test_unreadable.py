"""What cannot be read is said in one line: an inbox SQLite cannot read (the probes), data no
configured key opens (dead letters, failed deliveries)."""

from __future__ import annotations

import logging
import time

import pytest

from tests.cli_run import cli
from tests.damage import DataDir, garble
from tests.harness import present
from webhook_app import create_app
from workers.crypto import Codec, new_key
from workers.inbox.database import Inbox
from workers.records import DeadLetter


def test_healthz_and_readyz_agree_that_an_unreadable_inbox_is_not_ok(caplog):
    system = DataDir()
    try:
        system.fill()
        garble(system.inbox_path, at=0.5, size=8192)  # the schema reads; the rows do not
        client = create_app(system.settings, start_relay=False).test_client()
        with caplog.at_level(logging.ERROR, logger="webhook_app.probes"):
            answers = [(client.get("/healthz"), client.get("/readyz")) for _ in range(3)]
        for health, ready in answers:
            assert health.status_code == 503 and ready.status_code == 503
            health_json, ready_json = present(health.json), present(ready.json)
            assert health_json["status"] == "inbox unreadable" and "inbox" in health_json["failed"]
            assert "inbox" in ready_json["failed"]
            assert str(system.inbox_path) in ready_json["checks"]["inbox"]
        assert len([r for r in caplog.records if "cannot be read" in r.getMessage()]) == 1
        assert not [r for r in caplog.records if r.exc_info]
    finally:
        system.stop()


@pytest.fixture
def wrong_key():
    """A data_dir whose configuration names a key other than the one its data was sealed with."""
    system = DataDir(keys=[new_key()])
    yield system, Codec((new_key(),))
    system.stop()


def test_dead_letters_list_says_in_one_line_that_no_key_opens_them(wrong_key):
    system, other = wrong_key
    from workers.state import Store

    Store(system.settings.redis_store_url, codec=other).dead_letters.add(
        DeadLetter("jsonl", {"id": "e1", "kind": "message"}, 3, "boom", time.time(), time.time()))
    result = cli("dead-letters", "list", "--config", str(system.config), cwd=system.dir)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("Error: a dead letter is encrypted under a key that is not "
                                     "configured")


def test_failed_deliveries_list_says_in_one_line_that_no_key_opens_them(wrong_key):
    system, other = wrong_key
    inbox = Inbox(system.inbox_path)
    [delivery_id] = inbox.append_many([other.seal(b'{"object": "page", "entry": []}')])
    inbox.mark_failed([(delivery_id, "ValueError")])
    result = cli("deliveries", "list", "--failed", "--config", str(system.config), cwd=system.dir)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"Error: delivery {delivery_id} is encrypted under a key that "
                                     "is not configured")
