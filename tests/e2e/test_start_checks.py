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
        def waiting_line() -> str | None:
            text = relay.log.read_text()
            return text if "not ready" in text else None

        line = wait_for(waiting_line, timeout=30, message="the waiting line")
        assert "waiting for the store at redis://:***@127.0.0.1:1/0" in line
        assert "inbox-relay ready" not in line and "hunter2" not in line
        assert relay.post(b'{"object": "page", "entry": []}')[0] == 200
    finally:
        relay.cleanup()


def test_ctrl_c_after_the_reader_of_stdout_went_away_stops_everything_and_frees_the_port(tmp_path):
    """`inbox-relay run | head -1`, then Ctrl-C: no traceback, nothing left, the port free again."""
    import signal
    import subprocess
    import sys

    import psutil

    from tests.harness import ROOT, free_port, wait_for

    config = write_config(tmp_path / "c.toml", graph_url="http://127.0.0.1:9", accounts=[])
    port = free_port()
    run = subprocess.Popen([sys.executable, "-m", "workers.cli", "run", "--config", str(config),
                            "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert run.stdout is not None
        first = run.stdout.readline()  # what `head -1` reads, then it exits
        run.stdout.close()
        assert "inbox-relay ready" in first
        tree = psutil.Process(run.pid).children(recursive=True)
        assert "redis-server" in " ".join(" ".join(p.cmdline()) for p in tree)
        run.send_signal(signal.SIGINT)  # the terminal's Ctrl-C reaches run alone (its own group)
        _, errors = run.communicate(timeout=40)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0 and "Traceback" not in errors, errors[-3000:]
    wait_for(lambda: not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE],
             timeout=20, message="every child to exit")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_keys_rotated_while_run_is_up_keep_every_delivery_readable():
    """The README's rotation with `run` up: new key first, rotate-keys, old key removed. The web
    reloads the keys from the file as the workers do, so no delivery is sealed under a key the
    workers no longer hold."""
    import json

    from tests.cli_run import cli as run_cli
    from tests.harness import RelayProcess, wait_for
    from workers.crypto import new_key

    old, new = new_key(), new_key()

    def config_with(keys):
        return lambda d: write_config(d / "c.toml", graph_url="http://127.0.0.1:9", accounts=[],
                                      extra={"security": {"encryption_keys": keys}})

    def read(n: int) -> bytes:
        return json.dumps({"object": "page", "entry": [{"id": "P", "time": n, "messaging": [
            {"sender": {"id": "u"}, "recipient": {"id": "P"}, "timestamp": 1_700_000_000_000 + n,
             "read": {"watermark": n}}]}]}).encode()

    relay = RelayProcess(config_with([old]))
    try:
        relay.start()
        def events_reach(count: int):
            return lambda: len(relay.events()) >= count

        for n, keys in enumerate(([new, old], [new])):
            assert relay.post(read(n))[0] == 200
            wait_for(events_reach(n + 1), timeout=30, message=f"event {n}")
            stamp = relay.config.stat().st_mtime
            config_with(keys)(relay.dir)
            os.utime(relay.config, (stamp + 2, stamp + 2))  # a distinct mtime, however fast we are
            if keys == [new, old]:
                rotated = run_cli("rotate-keys", "--config", str(relay.config), cwd=relay.dir)
                assert rotated.returncode == 0, rotated.stderr
        assert relay.post(read(2))[0] == 200
        wait_for(lambda: len(relay.events()) == 3, timeout=30, message="the event sealed after rotation")
        log = relay.log.read_text()
        assert "failed for good" not in log and "DecryptError" not in log
    finally:
        relay.cleanup()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only tmpfs as data_dir needs root")
def test_a_data_dir_that_cannot_be_written_is_named_by_every_command_and_check_fails_it(tmp_path):
    import subprocess

    data_dir = tmp_path / "var"
    data_dir.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(data_dir)], check=True)
    try:
        config = write_config(tmp_path / "c.toml", graph_url="http://127.0.0.1:9", accounts=[],
                              handlers=[{"type": "jsonl", "path": str(tmp_path / "events.jsonl")}])
        for command in (["run", "--port", "1"], ["status"], ["dead-letters", "list"]):
            result = cli(*command, "--config", str(config), cwd=tmp_path)
            assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
            assert f"cannot use {data_dir}" in result.stderr and "Read-only file system" in result.stderr
        checked = cli("check", "--config", str(config), cwd=tmp_path)
        assert checked.returncode == 1 and f"FAIL  data_dir: {data_dir} is not writable" in checked.stdout
    finally:
        subprocess.run(["umount", "-l", str(data_dir)], check=False)


def test_check_says_when_the_keys_do_not_open_the_inbox(tmp_path):
    from workers.crypto import Codec, new_key
    from workers.inbox.database import INBOX_FILE, Inbox

    sealed_with, configured = new_key(), new_key()
    (tmp_path / "var").mkdir()
    Inbox(tmp_path / "var" / INBOX_FILE).append(Codec((sealed_with,)).seal(b'{"entry": []}'))
    config = write_config(tmp_path / "c.toml", graph_url="http://127.0.0.1:9", accounts=[],
                          handlers=[{"type": "jsonl", "path": str(tmp_path / "events.jsonl")}],
                          extra={"security": {"encryption_keys": [configured]}})
    result = cli("check", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1 and "FAIL  keys: inbox delivery 1 " in result.stdout
    assert "configure the key it was sealed with" in result.stdout and "Traceback" not in result.stderr
    config = write_config(tmp_path / "c.toml", graph_url="http://127.0.0.1:9", accounts=[],
                          handlers=[{"type": "jsonl", "path": str(tmp_path / "events.jsonl")}],
                          extra={"security": {"encryption_keys": [configured, sealed_with]}})
    checked = cli("check", "--config", str(config), cwd=tmp_path)
    assert "ok    keys: the configured keys open" in checked.stdout
