"""`inbox-relay run`: the private Redis, the web server and the worker as one unit that stops cleanly."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

from workers import environment
from workers.errors import ConfigError
from workers.priority import NICE_ENV
from workers.runtime import logs
from workers.runtime.components import Component, board_path, clear_board, write_board
from workers.runtime.private_redis import PrivateRedis, stop_embedded_redis
from workers.runtime.readiness import announce_when_reachable
from workers.settings import Settings

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
RESTART_CAP = 30.0     # the longest wait before a crashed part is started again
STABLE_AFTER = 60.0    # a part that ran this long before it exited is restarted at once
# The worker's nice increment: on a shared machine, acknowledging Meta's deliveries comes first;
# work the worker leaves waits durably in the queue and is done as soon as the CPU is free.
WORKER_NICE = 19
CONSOLE_NICE = 10


def web_command(host: str, port: int, workers: int) -> list[str]:
    """gunicorn serving the Flask app (gevent workers; the relay runs in its master)."""
    return [sys.executable, "-m", "gunicorn", "--config", "python:webhook_app.gunicorn_conf",
            "--workers", str(workers), "--log-level", logs.level(),
            "--bind", f"{host}:{port}", "--graceful-timeout", "10",
            "webhook_app:create_app()"]


def console_command(host: str, port: int) -> list[str]:
    """gunicorn serving the console: one process (its login limiter counts there), a few threads;
    without a control socket, which would take the webhook gunicorn's default path."""
    return [sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--workers", "1",
            "--threads", "4", "--no-control-socket", "--log-level", logs.level(), "--bind", f"{host}:{port}",
            "--graceful-timeout", "5", "webhook_app.console:serve()"]


def worker_command(concurrency: int) -> list[str]:
    """A Celery worker on the inbox-relay queue."""
    quiet = [] if logs.level() == "debug" else ["--quiet"]  # the banner: at debug only
    return [sys.executable, "-m", "celery", *quiet, "-A", "workers.celery_app", "worker",
            "--loglevel", logs.level().upper(), "--concurrency", str(concurrency), "--queues", "inbox-relay",
            "--without-gossip", "--without-mingle"]


def run(settings: Settings, *, host: str, port: int, web_workers: int = 2,
        concurrency: int = 2, redis_process: PrivateRedis | None = None,
        console: tuple[str, int] | None = None) -> int:
    """Start everything, restart what dies (with backoff, for as long as it takes), stop
    everything on SIGINT or SIGTERM. No part's failure stops another: the web keeps answering
    Meta while a worker crash-loops or Redis is down.

    `redis_process`: the private Redis the caller started for this run (None: it has another
    owner, or a broker is configured); it is restarted if it dies and stopped at the end.
    `console`: where to serve the web console (None: not at all).
    """
    # Supervised children leave the private Redis to us: one that started its own while ours was
    # down would leave a Redis nobody watches.
    env = {**os.environ, environment.CONFIG: str(settings.source_file.resolve()),
           environment.SUPERVISED: "1"}
    commands = {"web": web_command(host, port, web_workers), "worker": worker_command(concurrency)}
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    envs = {"web": env, "worker": {**env, NICE_ENV: str(WORKER_NICE)}}
    if console is not None:  # an operator's page waits; Meta's deliveries come first
        commands["console"], envs["console"] = console_command(*console), {**env, NICE_ENV: str(CONSOLE_NICE)}
    parts = {name: Part(name, functools.partial(_spawn, commands[name], envs[name])) for name in commands}
    board = board_path(settings)
    try:
        for part in parts.values():
            part.start()
        _wait_ready(f"http://{host}:{port}/healthz", [p.process for p in parts.values() if p.process],
                    stopping)
        announce_when_reachable(settings, f"http://{host}:{port}/webhook", stopping)
        while not stopping:
            if redis_process is not None and redis_process.exited():
                logs.say("inbox-relay: the private redis exited; restarting it")
                _restart_redis(redis_process)
            for part in parts.values():
                part.tend()
            write_board(board, [part.report() for part in parts.values()])
            time.sleep(0.2)
        return 0
    finally:
        clear_board(board)
        names = ", ".join([*parts, *(["the private redis"] if redis_process else [])])
        logs.say(f"inbox-relay: stopping {names} (work in flight finishes or goes back to the queue)")
        started = time.monotonic()
        _stop_all([part.process for part in parts.values() if part.process])
        stop_embedded_redis(redis_process)
        logs.say(f"inbox-relay: stopped in {time.monotonic() - started:.1f}s")


class Part:
    """One supervised process: restarted when it exits, after a delay that doubles with each
    exit that follows a short run (1 s up to RESTART_CAP), and resets after a long one."""

    def __init__(self, name: str, spawn: Callable[[], subprocess.Popen]):
        self.name, self.spawn = name, spawn
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restarts = self.quick_exits = 0
        self.last_exit_code: int | None = None
        self.last_exit_at: float | None = None
        self.next_start = 0.0  # monotonic; 0 while running

    def start(self) -> None:
        """Start the process now."""
        self.process, self.started_at, self.next_start = self.spawn(), time.monotonic(), 0.0

    def tend(self) -> None:
        """Notice an exit and schedule the restart; restart when its time has come."""
        if self.process is not None and self.process.poll() is not None:
            self._exited(self.process.returncode)
        if self.process is None and time.monotonic() >= self.next_start:
            self.restarts += 1
            self.start()

    def _exited(self, code: int) -> None:
        if self.process is not None:
            _signal_group(self.process, signal.SIGKILL)  # pool processes it may have left
        self.process = None
        ran = time.monotonic() - self.started_at
        self.quick_exits = self.quick_exits + 1 if ran < STABLE_AFTER else 1
        delay = min(RESTART_CAP, 2.0 ** (self.quick_exits - 1))
        self.next_start = time.monotonic() + delay
        self.last_exit_code, self.last_exit_at = code, time.time()
        logs.say(f"inbox-relay: {self.name} exited with code {code}; restarting it in {delay:.0f}s"
                 + (f" ({self.quick_exits} exits in a row within {STABLE_AFTER:.0f}s of starting)"
                    if self.quick_exits > 1 else ""))

    def report(self) -> Component:
        """How it stands, for `status` and `/readyz`."""
        waiting = self.process is None
        return Component(self.name, "restarting" if waiting else "running", restarts=self.restarts,
                         last_exit_code=self.last_exit_code, last_exit_at=self.last_exit_at,
                         next_start_at=time.time() + max(0.0, self.next_start - time.monotonic())
                         if waiting else None)


def _restart_redis(redis_process: PrivateRedis) -> None:
    """Start the private Redis again, under the lock this run still holds; while it cannot
    start, the next round tries again."""
    try:
        redis_process.start(daemonize=False)
    except ConfigError as exc:
        logs.say(f"inbox-relay: {exc}; trying again")
        time.sleep(1.0)  # the supervisor's own loop: nothing else waits on it


def _spawn(command: list[str], env: dict) -> subprocess.Popen:
    # Each child leads its own process group, so stopping it stops its pool processes too. Its
    # output goes to stderr, with the logs: stdout holds the supervisor's own lines, and a reader
    # of them that goes away (`run | head -1`) must not break a child's write.
    return subprocess.Popen(command, env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=sys.stderr.fileno())


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
