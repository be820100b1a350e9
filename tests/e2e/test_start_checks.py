"""`inbox-relay run` and `web` refuse a taken port at once, before they start anything."""

from __future__ import annotations

import os
import socket
import time

import pytest

from tests.cli_run import cli
from tests.harness import write_config


@pytest.mark.parametrize("command", ["run", "web"])
def test_a_port_another_process_listens_on_stops_the_start_at_once(tmp_path, command):
    config = write_config(tmp_path / "c.toml", graph_url="http://127.0.0.1:9", accounts=[])
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = time.monotonic()
        result = cli(command, "--config", str(config), "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"port {port} on 127.0.0.1 is in use (by pid {os.getpid()}); pass --port" in result.stderr
    assert "ready" not in result.stdout and "Traceback" not in result.stderr
    assert time.monotonic() - started < 15
    assert not (tmp_path / "var" / "redis.sock").exists(), "nothing may start before the check"


def test_run_is_not_ready_while_its_broker_answers_nothing_and_says_what_it_waits_for():
    """The web accepts (deliveries wait in the inbox) but `run` does not say ready, and names the
    broker by its URL without the password."""
    from tests.harness import RelayProcess, wait_for

    relay = RelayProcess(lambda d: write_config(d / "c.toml", graph_url="http://127.0.0.1:9", accounts=[],
                                                broker_url="redis://:hunter2@127.0.0.1:1/0"))
    try:
        relay.start()  # /healthz answers: the web tier is up
        line = wait_for(lambda: "not ready" in relay.log.read_text() and relay.log.read_text(), timeout=30,
                        message="the waiting line")
        assert "waiting for the store at redis://:***@127.0.0.1:1/0" in line
        assert "inbox-relay ready" not in line and "hunter2" not in line
        assert relay.post(b'{"object": "page", "entry": []}')[0] == 200
    finally:
        relay.cleanup()
