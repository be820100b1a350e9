"""/metrics and /readyz of a running system: every process's counts; readiness names what failed."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request

from tests.harness import RelayProcess, free_port, wait_for, write_config
from workers.ingest.parse import parse_envelope
from workers.runtime.private_redis import redis_server_binary

PAGE = "818181"


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _read(n: int) -> bytes:
    return json.dumps({"object": "page", "entry": [{"id": PAGE, "time": n, "messaging": [
        {"sender": {"id": f"u{n}"}, "recipient": {"id": PAGE}, "timestamp": 1_700_000_000_000 + n,
         "read": {"watermark": n}}]}]}).encode()


def _sample(text: str, name: str) -> float:
    """The value of one sample line of the exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " ") or (line.startswith(name + "{") and line.split(" ")[0] == name):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_and_readiness_of_a_running_system():
    port = free_port()
    redis_server = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    relay = RelayProcess(lambda d: write_config(d / "c.toml", graph_url="http://127.0.0.1:9", accounts=[],
                                                broker_url=f"redis://127.0.0.1:{port}/0"))
    try:
        relay.start()
        assert relay.post(_read(1))[0] == 200
        assert relay.post(_read(2), secret="wrong")[0] == 403
        [event] = parse_envelope(json.loads(_read(1)))
        wait_for(lambda: event.id in {r["id"] for r in relay.events()}, message="the event delivered")

        def delivered_counted() -> str | None:
            text = _get(relay.url + "/metrics")[1]
            key = 'inbox_relay_handler_deliveries_total{handler="jsonl",outcome="success"}'
            return text if _sample(text, key) >= 1 else None
        text = wait_for(delivered_counted, message="the worker's count in /metrics")
        assert _sample(text, 'inbox_relay_deliveries_total{outcome="accepted"}') == 1
        assert _sample(text, 'inbox_relay_deliveries_total{outcome="bad_signature"}') == 1
        assert _sample(text, 'inbox_relay_events_total{kind="read",platform="messenger"}') == 1
        assert _sample(text, "inbox_relay_ack_seconds_count") == 2
        assert "inbox_relay_inbox_backlog 0.0" in text and "inbox_relay_accounts_paused 0.0" in text

        status, body = _get(relay.url + "/readyz")
        assert status == 200 and json.loads(body)["failed"] == []
        redis_server.kill()
        redis_server.wait(10)
        status, body = _get(relay.url + "/readyz")
        assert status == 503 and set(json.loads(body)["failed"]) == {"broker", "store"}
    finally:
        relay.cleanup()
        redis_server.kill()
        redis_server.wait(10)


def test_json_logs_carry_one_object_per_line_with_the_ids():
    relay = RelayProcess(lambda d: write_config(d / "c.toml", graph_url="http://127.0.0.1:9", accounts=[]),
                         run_args=("--log-format", "json"))
    try:
        relay.start()
        assert relay.post(_read(3))[0] == 200
        assert relay.post(_read(4), secret="not-the-secret")[0] == 403
        [event] = parse_envelope(json.loads(_read(3)))
        wait_for(lambda: event.id in relay.log.read_text(), message="the delivery in the worker's log")
        lines = [json.loads(line) for line in relay.log.read_text().splitlines() if line.startswith("{")]
        messages = [line["message"] for line in lines]
        assert any(m.startswith("rejected delivery:") for m in messages), "the web worker's line"
        assert any('"POST /webhook" 403' in m for m in messages), "the access log's line"
        assert any(event.id in m and "handler=jsonl" in m for m in messages), "the worker's line"
        assert {"time", "level", "logger", "message"} <= set(lines[0])
    finally:
        relay.cleanup()
