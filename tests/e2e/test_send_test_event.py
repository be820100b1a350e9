"""`inbox-relay send-test-event` against a running system (`inbox-relay run` and the Graph stand-in),
the deliveries' wire format, and the token warning `run` logs at start."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.cli_run import cli
from tests.harness import ROOT, SECRET, VERIFY_TOKEN, GraphBackedRelay, RelayProcess, wait_for, write_config
from webhook_app.signature import sign, verify
from workers.connect.probe import probe_tokens
from workers.connect.samples import KINDS, TEXT, build_delivery, signed_headers, wire_bytes
from workers.ingest.parse import parse_envelope
from workers.playground.graph_server import FakeGraphServer
from workers.playground.graph_world import GraphWorld
from workers.runtime.config import load_settings, settings_from_dict

PAGE, IG, TOKEN = "100200300400500", "17841400123456789", "page-token-secret-100"
SECRETS = (TOKEN, SECRET, VERIFY_TOKEN)
FAST = {"hydration": {"coalesce_seconds": 0.3, "paused_recheck_seconds": 0.5}}
EXPECTED = {"text": ["message"], "attachment": ["message"], "echo": ["echo"], "reaction": ["reaction"],
            "read": ["read"], "postback": ["postback"], "edit": ["message_edit"],
            "delete": ["message_delete"], "batch": ["message", "reaction", "read", "postback"]}


@pytest.fixture(scope="module")
def relay():
    world = GraphWorld()
    world.add_account(PAGE, TOKEN)
    accounts = [{"page_id": PAGE, "instagram_id": IG, "access_token": TOKEN}]
    with GraphBackedRelay(world, accounts, extra=FAST) as relay:
        yield relay


def _args(relay, *args: str, config=None) -> list[str]:
    """`send-test-event ARGS` posting to the running system, with its configuration or `config`."""
    return ["send-test-event", *args, "--to", relay.url + "/webhook", "--config", str(config or relay.config)]


def _command(relay, *args: str) -> list[str]:
    return [sys.executable, "-m", "workers.cli", *_args(relay, *args)]


def _send_all(relay, platform: str, kinds) -> dict[str, tuple[int, str]]:
    """Every kind at once, each its own `send-test-event KIND --wait` process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = {kind: subprocess.Popen(_command(relay, kind, "--platform", platform, "--wait"), cwd=ROOT,
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for kind in kinds}
    results = {}
    for kind, process in processes.items():
        output, _ = process.communicate(timeout=100)
        assert not [s for s in SECRETS if s in output], output
        results[kind] = (process.returncode, output)
    return results


def _records(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("platform, account", [("messenger", PAGE), ("instagram", IG)])
def test_every_kind_is_answered_200_and_its_record_printed(relay, platform, account):
    kinds = [k for k in KINDS if not (platform == "instagram" and k == "edit")]
    graph_version = load_settings(relay.config).meta.graph_version  # what each delivery says it is
    for kind, (code, output) in _send_all(relay, platform, kinds).items():
        assert code == 0, output
        assert re.search(rf"^1/1 {kind} \(\d item\(s\)\): 200 EVENT_RECEIVED$", output, re.M), output
        records = _records(output)
        assert [r["kind"] for r in records] == EXPECTED[kind], output
        assert {(r["platform"], r["account_id"]) for r in records} == {(platform, account)}
        assert {r["api_version"] for r in records} == {graph_version}, "sent as Meta sends it"
        assert records[0] in relay.events()
        if kind in ("text", "batch"):
            assert records[0]["raw"]["message"]["text"] == TEXT  # non-ASCII survives the \\u escapes
            assert records[0]["hydration"] in ("complete", "unavailable")


def test_edit_is_refused_on_instagram(relay):
    result = subprocess.run(_command(relay, "edit", "--platform", "instagram"), cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2 and "Messenger only" in result.stderr


def test_count_sends_that_many_deliveries(relay):
    result = cli(*_args(relay, "read", "--count", "3", "--wait"), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert len(re.findall(r"^\d/3 read \(1 item\(s\)\): 200 ", result.stdout, re.M)) == 3
    assert len({r["id"] for r in _records(result.stdout)}) == 3


def test_a_wrong_app_secret_is_answered_403_and_said(relay, tmp_path):
    config = tmp_path / "wrong.toml"
    config.write_text(relay.config.read_text().replace(f'"{SECRET}", ', '"not-the-app-secret", '))
    result = cli(*_args(relay, "read", config=config), cwd=ROOT)
    assert result.returncode == 1 and ": 403 " in result.stdout
    assert "refused the signature" in result.stderr
    assert "not-the-app-secret" not in result.stdout + result.stderr


def test_wait_needs_a_jsonl_handler(relay, tmp_path):
    config = write_config(tmp_path / "log.toml", graph_url="http://127.0.0.1:9", handlers=[{"type": "log"}],
                          accounts=[{"page_id": PAGE, "access_token": TOKEN}])
    result = cli(*_args(relay, "reaction", "--wait", config=config), cwd=ROOT)
    assert result.returncode == 1 and "cannot wait: no jsonl handler takes reaction events" in result.stderr
    assert " 200 " not in result.stdout  # refused before sending anything


def test_wait_gives_up_at_its_deadline(relay, tmp_path):
    elsewhere = [{"type": "jsonl", "path": str(tmp_path / "nobody-writes-here.jsonl")}]
    config = write_config(tmp_path / "other.toml", graph_url="http://127.0.0.1:9", handlers=elsewhere,
                          accounts=[{"page_id": PAGE, "access_token": TOKEN}])
    result = cli(*_args(relay, "read", "--wait", "--timeout", "1", config=config), cwd=ROOT)
    assert result.returncode == 1 and "timed out after 1s" in result.stderr
    assert ": 200 " in result.stdout


def test_nothing_listening_is_a_clean_error(tmp_path):
    config = write_config(tmp_path / "c.toml", graph_url="http://127.0.0.1:9",
                          accounts=[{"page_id": PAGE, "access_token": TOKEN}])
    result = cli("send-test-event", "text", "--to", "http://127.0.0.1:9/webhook", "--config", str(config),
                 cwd=tmp_path)
    assert result.returncode == 1 and "is inbox-relay running?" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_deliveries_are_serialised_and_signed_as_meta_does(kind):
    envelope = build_delivery(kind, "messenger", PAGE)
    body = wire_bytes(envelope)
    assert body.isascii() and json.loads(body) == envelope
    assert b"/" not in body.replace(b"\\/", b"")  # every "/" escaped
    headers = signed_headers(SECRET, body, api_version="v27.0")
    assert headers["X-Hub-Signature-256"] == sign(SECRET, body) and headers["Facebook-API-Version"] == "v27.0"
    verify(body, headers["X-Hub-Signature-256"], [SECRET])
    entries = envelope["entry"]
    assert {e["id"] for e in entries} == {PAGE} and all(e["time"] > 10**12 for e in entries)
    assert len(entries) == (2 if kind == "batch" else 1)
    assert [e.kind for e in parse_envelope(envelope)] == EXPECTED[kind]
    for item in (item for e in entries for item in e["messaging"]):
        customer = {item["sender"]["id"], item["recipient"]["id"]} - {PAGE}  # an echo's sender is the page
        assert item["timestamp"] > 10**12 and re.fullmatch(r"\d{16,17}", customer.pop())
        body_of = next(v for k, v in item.items() if k not in ("sender", "recipient", "timestamp"))
        if "mid" in body_of:
            assert re.fullmatch(r"m_[A-Za-z0-9_-]{86}", body_of["mid"])


def test_text_is_escaped_as_meta_escapes_it():
    body = wire_bytes(build_delivery("text", "instagram", IG))
    assert b"\\u00fc" in body and b"\\ud83d\\udc4b" in body  # ü, and 👋 as a surrogate pair
    assert json.loads(body)["object"] == "instagram"


def test_the_token_probe_warns_only_about_the_failing_account(caplog):
    world = GraphWorld()
    world.add_account(PAGE, TOKEN)
    world.add_account("600700800900100", "revoked-token")
    world.revoked.add("revoked-token")
    with FakeGraphServer(world) as server:
        settings = settings_from_dict({
            "meta": {"app_secrets": [SECRET], "verify_token": VERIFY_TOKEN, "graph_url": server.url},
            "accounts": [{"page_id": PAGE, "access_token": TOKEN},
                         {"page_id": "600700800900100", "access_token": "revoked-token"}]}, env={})
        warnings = probe_tokens(settings)
    assert len(warnings) == 1 and warnings[0].startswith("account 600700800900100: token invalid or expired")
    assert "revoked-token" not in caplog.text and warnings[0] in caplog.text
    offline = settings.model_copy(update={"meta": settings.meta.model_copy(
        update={"graph_url": "http://127.0.0.1:9"})})
    assert probe_tokens(offline) == []  # no answer: nothing learnt, nothing to warn about


def test_run_logs_a_warning_at_start_for_a_revoked_token():
    world = GraphWorld()
    world.add_account(PAGE, TOKEN)
    world.revoked.add(TOKEN)
    with GraphBackedRelay(world, [{"page_id": PAGE, "access_token": TOKEN}]) as relay:
        line = wait_for(lambda: next((line for line in relay.log.read_text().splitlines()
                                      if f"account {PAGE}: token invalid" in line), None),
                        timeout=30, message="the token warning in the run log")
        assert "WARNING" in line and TOKEN not in relay.log.read_text()
        assert relay.post(wire_bytes(build_delivery("read", "messenger", PAGE)))[0] == 200  # still runs


def test_the_readme_quick_test_works_with_the_example_configuration():
    """README "Try it": `run --config examples/config.toml`, then `send-test-event text --wait`."""
    def example_copy(directory):
        (directory / "examples").mkdir()
        config = directory / "examples" / "config.toml"  # its "../var" is then the test's var/
        config.write_text((ROOT / "examples" / "config.toml").read_text())
        return config

    relay = RelayProcess(example_copy)
    try:
        relay.start()
        result = cli(*_args(relay, "text", "--wait"), cwd=relay.dir)
        assert result.returncode == 0, result.stderr
        assert "1/1 text (1 item(s)): 200 EVENT_RECEIVED" in result.stdout
        [record] = _records(result.stdout)
        assert record["hydration"] == "unavailable" and record in relay.events()
        assert "example-app-secret" not in result.stdout + result.stderr
    finally:
        relay.cleanup()
