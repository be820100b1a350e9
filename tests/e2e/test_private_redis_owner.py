"""One private Redis per data_dir: its owner holds a lock for its life, and a Redis that answers
an error (a full disk: MISCONF) is reported by other commands, never replaced nor disturbed."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest
import redis

from tests.cli_run import cli
from tests.harness import ROOT, present, wait_for, write_config
from workers.runtime.config import load_settings
from workers.runtime.private_redis import ensure_embedded_redis, has_owner

START = ("import sys; from workers.runtime.config import load_settings; "
         "from workers.runtime.private_redis import ensure_embedded_redis; "
         "ensure_embedded_redis(load_settings(sys.argv[1]))")


@pytest.fixture
def config():
    directory = Path(tempfile.mkdtemp(prefix="ir-lock-", dir="/tmp"))
    path = write_config(directory / "c.toml", graph_url="http://127.0.0.1:9", accounts=[])
    yield path
    for process in _redis_servers(directory):
        process.kill()


def _redis_servers(directory: Path) -> list[psutil.Process]:
    socket = str(directory / "var" / "redis.sock")
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            if "redis-server" in (process.info["name"] or "") and socket in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:
            pass
    return found


def test_two_processes_starting_the_private_redis_at_once_start_one(config):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    starters = [subprocess.Popen([sys.executable, "-c", START, str(config)], env=env) for _ in range(2)]
    assert [starter.wait(60) for starter in starters] == [0, 0]
    assert len(_redis_servers(config.parent)) == 1
    assert has_owner(config.parent / "var")  # the daemonized redis-server holds the lock itself


def _refuse_writes(client: redis.Redis, scratch: Path) -> None:
    """Make the Redis answer MISCONF, as on a full disk: a snapshot it cannot write."""
    scratch.mkdir()
    client.config_set("dir", str(scratch))
    scratch.rmdir()
    client.config_set("save", "3600 1")
    client.bgsave()
    wait_for(lambda: client.info("persistence")["rdb_last_bgsave_status"] == "err",
             message="the snapshot to fail")
    with pytest.raises(redis.ResponseError, match="MISCONF"):
        client.ping()


def test_status_while_the_private_redis_refuses_writes_reports_it_and_leaves_it_alone(config):
    settings = load_settings(config)
    owned = ensure_embedded_redis(settings, daemonize=False)
    assert owned is not None and owned.process is not None
    try:
        client = redis.Redis(unix_socket_path=str(settings.redis_socket))
        _refuse_writes(client, config.parent / "gone")
        result = cli("status", "--config", str(config), cwd=config.parent)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "MISCONF" in result.stderr and "left alone" in result.stderr
        second = subprocess.run([sys.executable, "-c", START, str(config)], capture_output=True, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
        assert second.returncode != 0 and "PrivateRedisUnhealthy" in second.stderr
        assert settings.redis_socket.exists()
        assert [p.pid for p in _redis_servers(config.parent)] == [present(owned.process).pid]
        client.config_set("save", "")  # the disk has room again
        assert client.ping()
    finally:
        client.config_set("save", "")
        client.config_set("dir", str(settings.data_dir.resolve()))
        owned.stop()


def test_status_uses_a_redis_another_process_owns_and_leaves_it_running(config):
    settings = load_settings(config)
    owned = present(ensure_embedded_redis(settings, daemonize=False))
    try:
        assert cli("status", "--config", str(config), cwd=config.parent).returncode == 0
        assert [p.pid for p in _redis_servers(config.parent)] == [present(owned.process).pid]
        assert redis.Redis(unix_socket_path=str(settings.redis_socket)).ping()
    finally:
        owned.stop()
