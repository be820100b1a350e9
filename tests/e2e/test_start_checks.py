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
