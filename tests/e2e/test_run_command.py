"""`inbox-relay run`: ready when /healthz answers; SIGINT or SIGTERM leaves no process behind."""

import signal

import psutil
import pytest

from tests.harness import RelayProcess, present, wait_for, write_config


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stop_leaves_no_process_behind(signum):
    relay = RelayProcess(lambda d: write_config(d / "c.toml", graph_url="http://127.0.0.1:9", accounts=[]))
    try:
        relay.start()
        tree = psutil.Process(present(relay.process).pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        assert "gunicorn" in names and "celery" in names and "redis-server" in names
        assert relay.stop(signum) == 0
        wait_for(lambda: not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE],
                 timeout=30, message="every child to exit")
    finally:
        relay.cleanup()


def test_bad_configuration_fails_fast_with_the_key(tmp_path):
    import subprocess
    import sys

    config = tmp_path / "c.toml"
    config.write_text('[meta]\napp_secrets = ["s"]\n')
    result = subprocess.run([sys.executable, "-m", "workers.cli", "run", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "meta.verify_token" in result.stderr


def test_unknown_handler_type_fails_fast(tmp_path):
    import subprocess
    import sys

    config = write_config(tmp_path / "c.toml", graph_url="http://127.0.0.1:9", accounts=[],
                          handlers=[{"type": "no-such-plugin"}])
    result = subprocess.run([sys.executable, "-m", "workers.cli", "worker", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "no-such-plugin" in result.stderr


def test_procfile_style_gunicorn_without_our_config_relays_in_each_worker(tmp_path):
    """Plain `gunicorn "webhook_app:create_app()"` and `celery ... worker`, as a PaaS would run them."""
    import json
    import os
    import subprocess
    import sys

    from tests.harness import ROOT, free_port, post, read_jsonl, redis_url

    config = write_config(tmp_path / "c.toml", graph_url="http://127.0.0.1:9", accounts=[],
                          broker_url=redis_url(9))
    env = {**os.environ, "INBOX_RELAY_CONFIG": str(config), "PYTHONPATH": str(ROOT)}
    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                            "webhook_app:create_app()"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
                               "-Q", "inbox-relay", "-c", "1"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        body = json.dumps({"object": "page", "entry": [{"id": "1", "messaging": [
            {"sender": {"id": "2"}, "recipient": {"id": "1"}, "timestamp": 3,
             "read": {"watermark": 3}}]}]}).encode()
        wait_for(lambda: _posted(post, f"http://127.0.0.1:{port}/webhook", body), timeout=30,
                 message="gunicorn to accept")
        events = tmp_path / "var" / "events.jsonl"
        records = wait_for(lambda: read_jsonl(events), timeout=30, message="the event in the jsonl file")
        assert [r["kind"] for r in records] == ["read"]
    finally:
        for process in (web, worker):
            process.terminate()
            process.wait(30)


def _posted(post, url, body) -> bool:
    try:
        return post(url, body)[0] == 200
    except OSError:
        return False
