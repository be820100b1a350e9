"""`inbox-relay run`: the private Redis, the web server and the worker as one unit that stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from workers.runtime import logs
from workers.runtime.priority import NICE_ENV
from workers.runtime.private_redis import PrivateRedis, stop_embedded_redis
from workers.runtime.settings import Settings

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
MAX_RESTARTS = 5       # restarts of one component within CRASH_WINDOW before giving up
CRASH_WINDOW = 60.0
# The worker's nice increment: on a shared machine, acknowledging Meta's deliveries comes first;
# work the worker leaves waits durably in the queue and is done as soon as the CPU is free.
WORKER_NICE = 19


def web_command(host: str, port: int, workers: int) -> list[str]:
    """gunicorn serving the Flask app (gevent workers; the relay runs in its master)."""
    return [sys.executable, "-m", "gunicorn", "--config", "python:webhook_app.gunicorn_conf",
            "--workers", str(workers), "--log-level", logs.level(),
            "--bind", f"{host}:{port}", "--graceful-timeout", "10",
            "webhook_app:create_app()"]


def worker_command(concurrency: int) -> list[str]:
    """A Celery worker on the inbox-relay queue."""
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
            "--loglevel", logs.level().upper(), "--concurrency", str(concurrency), "--queues", "inbox-relay",
            "--without-gossip", "--without-mingle"]


def run(settings: Settings, *, host: str, port: int, web_workers: int = 2,
        concurrency: int = 2, redis_process: PrivateRedis | None = None) -> int:
    """Start everything, restart what dies, stop everything on SIGINT or SIGTERM.

    `redis_process`: the private Redis the caller started for this run (None: it has another
    owner, or a broker is configured); it is restarted if it dies and stopped at the end.
    """
    # Supervised children leave the private Redis to us: one that started its own while ours was
    # down would leave a Redis nobody watches.
    env = {**os.environ, "INBOX_RELAY_CONFIG": str(settings.source_file.resolve()),
           "INBOX_RELAY_SUPERVISED": "1"}
    commands = {"web": web_command(host, port, web_workers), "worker": worker_command(concurrency)}
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    envs = {"web": env, "worker": {**env, NICE_ENV: str(WORKER_NICE)}}
    children = {name: _spawn(command, envs[name]) for name, command in commands.items()}
    restarts: dict[str, list[float]] = {name: [] for name in commands}
    try:
        _wait_ready(f"http://{host}:{port}/healthz", list(children.values()), stopping)
        print(f"inbox-relay ready: webhook at http://{host}:{port}/webhook (Ctrl-C stops)", flush=True)
        while not stopping:
            if redis_process is not None and redis_process.exited():
                print("inbox-relay: the private redis exited; restarting it", flush=True)
                redis_process.start(daemonize=False)  # under the lock this run still holds
            for name, child in children.items():
                if child.poll() is not None:
                    _note_restart(name, child.returncode, restarts[name])
                    _signal_group(child, signal.SIGKILL)  # pool processes it may have left
                    children[name] = _spawn(commands[name], envs[name])
            time.sleep(0.2)
        return 0
    except CrashLoop as exc:
        print(f"inbox-relay: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        parts = ", ".join([*children, *(["the private redis"] if redis_process else [])])
        print(f"inbox-relay: stopping {parts} (work in flight finishes or goes back to the queue)",
              flush=True)
        started = time.monotonic()
        _stop_all(list(children.values()))
        stop_embedded_redis(redis_process)
        print(f"inbox-relay: stopped in {time.monotonic() - started:.1f}s", flush=True)


class CrashLoop(Exception):
    """A component keeps dying right after it starts: stop rather than loop."""


def _note_restart(name: str, code: int, history: list[float]) -> None:
    now = time.monotonic()
    history[:] = [t for t in history if now - t < CRASH_WINDOW] + [now]
    if len(history) > MAX_RESTARTS:
        raise CrashLoop(f"{name} exited {len(history)} times within {CRASH_WINDOW:.0f}s; see its log above")
    print(f"inbox-relay: {name} exited with code {code}; restarting it", flush=True)


def _spawn(command: list[str], env: dict) -> subprocess.Popen:
    # Each child leads its own process group, so stopping it stops its pool processes too.
    return subprocess.Popen(command, env=env, start_new_session=True, stdin=subprocess.DEVNULL)


def _wait_ready(url: str, children: list[subprocess.Popen], stopping: list) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and not stopping:
        if any(child.poll() is not None for child in children):
            raise SystemExit("inbox-relay: a component exited during start-up; see its log above")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    if not stopping:
        raise SystemExit(f"inbox-relay: {url} did not answer within {READY_TIMEOUT:.0f}s")


def _stop_all(children: list[subprocess.Popen]) -> None:
    for child in children:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal_group(child, signal.SIGKILL)  # whatever is left of its group
        child.wait()


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(child.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
