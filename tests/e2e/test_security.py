"""Nothing readable: sealed data at rest, rotation, private files, and logs without secrets or text."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import redis

from tests.harness import SECRET, VERIFY_TOKEN, GraphBackedRelay, message_body, present, wait_for
from workers.crypto import Codec, DecryptError, new_key
from workers.inbox.database import INBOX_FILE, Inbox
from workers.playground.graph_world import GraphWorld
from workers.state import Store

PAGE, TOKEN, USER = "777001", "PAGE-TOKEN-5f1c9e", "U-sec"
TEXT = "PRIVATE-TEXT-0b7d2"


def test_data_sealed_under_an_old_key_opens_after_rotation(tmp_path):
    old, new = new_key(), new_key()
    inbox = Inbox(tmp_path / INBOX_FILE)
    row = inbox.append(Codec((old,)).seal(TEXT.encode()))
    plain = inbox.append(b'{"written": "before keys were set"}')
    assert TEXT.encode() not in present(inbox.get(row)).body
    assert inbox.reseal(Codec((new, old))) == 2
    only_new = Codec((new,))
    assert only_new.open(present(inbox.get(row)).body) == TEXT.encode()
    assert only_new.open(present(inbox.get(plain)).body) == b'{"written": "before keys were set"}'
    with pytest.raises(DecryptError, match="not configured"):
        Codec((old,)).open(present(inbox.get(row)).body, what="inbox delivery 1")


def test_sealed_data_without_a_key_is_a_clear_error():
    sealed = Codec((new_key(),)).seal(b"x")
    with pytest.raises(DecryptError, match="no encryption key is configured"):
        Codec().open(sealed, what="inbox delivery 3")


def _files(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file() or path.is_socket()]


def _redis_values(socket_path: Path) -> bytes:
    client = redis.Redis(unix_socket_path=str(socket_path))
    return b"".join(client.dump(key) or b"" for key in client.scan_iter(count=1000))


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    world = GraphWorld(calls_per_second=2.0, transient_rate=0.5)  # outages and throttling
    world.add_account(PAGE, TOKEN)
    key = new_key()
    handlers: list[dict] = [{"type": "jsonl", "path": "out/events.jsonl"},
                {"type": "python", "name": "always_fail", "target": "tests.user_handlers:always_fail",
                 "max_attempts": 1}]
    extra = {"security": {"encryption_keys": [key]},
             "hydration": {"coalesce_seconds": 0.1, "throttle_seconds": 1}}
    accounts = [{"page_id": PAGE, "access_token": TOKEN, "calls_per_second": 5.0}]
    with GraphBackedRelay(world, accounts, extra=extra, handlers=handlers,
                          run_args=("--log-level", "debug")) as relay:
        for n in range(6):
            mid = f"m_sec_{n}"
            world.add_message(PAGE, "messenger", USER, mid, text=f"{TEXT} graph {n}")
            assert relay.post(message_body(PAGE, USER, mid, text=f"{TEXT} webhook {n}"))[0] == 200
        out = relay.dir / "out" / "events.jsonl"
        wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 6, timeout=60,
                 message="six hydrated messages")
        store = Store(relay.store_url, codec=Codec((key,)))
        wait_for(lambda: store.dead_letters.count() == 6, timeout=30, message="six dead letters")
        relay.key = key
        yield relay


def test_nothing_in_data_dir_or_redis_shows_text_or_a_token(system):
    records = [json.loads(line) for line in (system.dir / "out" / "events.jsonl").read_text().splitlines()]
    assert any(TEXT in (r["message"] or {}).get("message", "") for r in records), "the handler gets text"
    data_dir = system.dir / "var"
    for path in _files(data_dir):
        if path.is_file():
            content = path.read_bytes()
            assert TEXT.encode() not in content and TOKEN.encode() not in content, path
    values = _redis_values(data_dir / "redis.sock")
    assert values and TEXT.encode() not in values and TOKEN.encode() not in values


def test_files_and_the_data_dir_are_private(system):
    data_dir = system.dir / "var"
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    loose = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in _files(data_dir)
             if stat.S_IMODE(p.stat().st_mode) & 0o077}
    assert loose == {}
    assert stat.S_IMODE((system.dir / "out" / "events.jsonl").stat().st_mode) == 0o600


def test_logs_at_debug_show_no_secret_token_or_text(system):
    log = system.log.read_text()
    assert "DEBUG" in log and "dead-lettered" in log
    assert system.world.count(status=500) and "Graph API failing" in log, "an outage was logged"
    if system.world.throttled():
        assert "throttled" in log
    for secret in (TOKEN, SECRET, VERIFY_TOKEN, TEXT, system.key):
        assert secret not in log, f"{secret[:12]}... appears in the logs"


def test_a_wrong_key_stops_start_up_naming_what_cannot_be_decrypted(system, tmp_path):
    import subprocess
    import sys

    from tests.harness import ROOT

    config = system.config.read_text().replace(system.key, new_key())
    wrong = system.dir / "wrong-key.toml"
    wrong.write_text(config)
    result = subprocess.run([sys.executable, "-m", "workers.cli", "worker", "--config", str(wrong)],
                            cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert result.returncode != 0
    assert "inbox delivery" in result.stderr and "not configured" in result.stderr


def test_run_makes_a_private_key_for_the_private_redis_and_says_so():
    from tests.harness import RelayProcess, write_config

    relay = RelayProcess(lambda d: write_config(d / "c.toml", graph_url="http://127.0.0.1:9", accounts=[]))
    try:
        relay.start()
        key_file = relay.dir / "var" / "encryption.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert Codec((key_file.read_text().strip(),)).enabled
        assert "made an encryption key" in relay.log.read_text()
        body = message_body(PAGE, USER, "m_plain", text=TEXT)
        assert relay.post(body)[0] == 200
        inbox = Inbox(relay.dir / "var" / INBOX_FILE)
        assert TEXT.encode() not in inbox.list(limit=1)[0].body
    finally:
        relay.cleanup()
