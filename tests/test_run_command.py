"""`inbox-relay run`: ready when /healthz answers; SIGINT or SIGTERM leaves no process behind."""

import signal

import psutil
import pytest

from tests.harness import RelayProcess, wait_for, write_config


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stop_leaves_no_process_behind(signum):
    relay = RelayProcess(lambda d: write_config(d / "c.toml", graph_url="http://127.0.0.1:9", accounts=[]))
    try:
        relay.start()
        tree = psutil.Process(relay.process.pid).children(recursive=True)
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
