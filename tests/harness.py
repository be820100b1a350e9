"""Start inbox-relay for real (`inbox-relay run` in a subprocess), post signed deliveries, wait on results."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import redis

from webhook_app.signature import sign

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
TEST_REDIS = "redis://127.0.0.1:6379"
REDIS = f"{TEST_REDIS}/0"  # the database in-process tests share, each under a key prefix of its own

if TYPE_CHECKING:
    from workers.playground.graph_world import GraphWorld
    from workers.state import Store

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], *, timeout: float = 20.0, interval: float = 0.05,
             message: str = "condition") -> T:
    """Poll `condition` until it returns something truthy (so never None); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def present(value: T | None) -> T:
    """`value`, which the test knows is there (a row it just wrote, a match of a fixed file)."""
    assert value is not None
    return value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, body: bytes, *, secret: str | None = SECRET,
         headers: dict | None = None) -> tuple[int, bytes]:
    """POST raw bytes, signed with `secret` unless it is None; returns (status, body)."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if secret is not None:
        all_headers["X-Hub-Signature-256"] = sign(secret, body)
    request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def read_jsonl(path: Path) -> list[dict]:
    """Every record of a jsonl file (none if it does not exist yet)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def redis_url(db: int) -> str:
    """A database of the machine's Redis, emptied for the test."""
    url = f"{TEST_REDIS}/{db}"
    redis.Redis.from_url(url).flushdb()
    return url


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def write_config(path: Path, *, graph_url: str, accounts: list[dict], broker_url: str = "",
                 handlers: list[dict] | None = None, extra: dict | None = None) -> Path:
    """Write a configuration file for a test system."""
    lines = ["[meta]", f"app_secrets = {toml_value([SECRET, 'second-secret'])}",
             f"verify_token = {toml_value(VERIFY_TOKEN)}", f"graph_url = {toml_value(graph_url)}"]
    for key, value in (extra or {}).get("meta", {}).items():
        lines.append(f"{key} = {toml_value(value)}")
    for section in ("queue", "hydration", "web", "security", "events", "sync"):
        values = {"broker_url": broker_url, "data_dir": "var"} if section == "queue" else {}
        values.update((extra or {}).get(section, {}))
        if values:
            lines += [f"[{section}]"] + [f"{k} = {toml_value(v)}" for k, v in values.items()]
    for account in accounts:
        lines += ["[[accounts]]"] + [f"{k} = {toml_value(v)}" for k, v in account.items()]
    for handler in handlers or [{"type": "jsonl", "path": "var/events.jsonl"}]:
        lines += ["[[handlers]]"] + [f"{k} = {toml_value(v)}" for k, v in handler.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class RelayProcess:
    """`inbox-relay run` on a free port, in a short temp dir (unix socket paths are short)."""

    # Set by whoever starts it (GraphBackedRelay, a test's fixture); unset until then.
    world: GraphWorld
    instagram_world: GraphWorld  # the Instagram Login host's, when there is one
    store_url: str
    store: Store
    key: str

    def __init__(self, config_for: Callable[[Path], Path], *, run_args: tuple[str, ...] = ()):
        self.dir = Path(tempfile.mkdtemp(prefix="ir-", dir="/tmp"))
        self.config = config_for(self.dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.dir / "run.log"
        self.process: subprocess.Popen | None = None
        self.run_args = run_args

    @property
    def events_path(self) -> Path:
        return self.dir / "var" / "events.jsonl"

    def start(self) -> RelayProcess:
        command = [sys.executable, "-m", "workers.cli", "run", "--config", str(self.config),
                   "--port", str(self.port), *self.run_args]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                            env={**os.environ, "PYTHONPATH": str(ROOT)})
        wait_for(self._healthy, timeout=60, message=f"inbox-relay to answer (log: {self.log})")
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"inbox-relay exited early:\n{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.returncode if self.process else 0

    def open_store(self, url: str | None = None) -> Store:
        """The system's Store, with the key `run` made for the private Redis (if it made one)."""
        from workers.crypto import Codec
        from workers.state import Store

        key_file = self.dir / "var" / "encryption.key"
        keys = (key_file.read_text().strip(),) if key_file.exists() else ()
        return Store(url or self.store_url, codec=Codec(keys))

    def post(self, body: bytes, **kwargs) -> tuple[int, bytes]:
        return post(self.url + "/webhook", body, **kwargs)

    def events(self) -> list[dict]:
        return read_jsonl(self.events_path)

    def cleanup(self) -> None:
        self.stop()
        if not os.environ.get("INBOX_RELAY_KEEP_TEST_DIRS"):  # set it to read a failed run's log
            shutil.rmtree(self.dir, ignore_errors=True)


class GraphBackedRelay:
    """A fake Graph world served over HTTP plus `inbox-relay run` pointed at it; a context manager."""

    def __init__(self, world: GraphWorld, accounts: list[dict], *, broker_url: str = "",
                 extra: dict | None = None, handlers: list[dict] | None = None,
                 run_args: tuple[str, ...] = (), instagram_world: GraphWorld | None = None):
        from workers.playground.graph_server import FakeGraphServer

        self.world, self.accounts, self.extra, self.handlers = world, accounts, extra, handlers
        self.run_args = run_args
        self.server = FakeGraphServer(world)
        # The Instagram Login host, on a port of its own: what goes to which host is told apart.
        self.instagram = FakeGraphServer(instagram_world) if instagram_world else None
        self.broker_url = broker_url
        self.relay: RelayProcess | None = None

    def write_config(self, directory: Path, accounts: list[dict] | None = None) -> Path:
        extra = dict(self.extra or {})
        if self.instagram:
            extra["meta"] = {**extra.get("meta", {}), "instagram_graph_url": self.instagram.url}
        return write_config(directory / "inbox-relay.toml", graph_url=self.server.url,
                            accounts=accounts or self.accounts, broker_url=self.broker_url,
                            extra=extra, handlers=self.handlers)

    def __enter__(self) -> RelayProcess:
        if self.instagram:
            self.instagram.__enter__()
        self.server.__enter__()
        self.relay = RelayProcess(self.write_config, run_args=self.run_args).start()
        self.relay.world = self.world
        if self.instagram:
            self.relay.instagram_world = self.instagram.world
        self.relay.store_url = self.broker_url or f"unix://{self.relay.dir / 'var' / 'redis.sock'}"
        return self.relay

    def __exit__(self, *exc) -> None:
        assert self.relay is not None
        self.relay.cleanup()
        self.server.__exit__()
        if self.instagram:
            self.instagram.__exit__()


def message_body(account: str, user: str, mid: str, *, platform_object: str = "page",
                 timestamp: int | None = None, text: str = "hello") -> bytes:
    """A webhook delivery of one incoming message, escaped as Meta sends it."""
    stamp = timestamp or int(time.time() * 1000)
    envelope = {"object": platform_object, "entry": [{"id": account, "time": stamp, "messaging": [
        {"sender": {"id": user}, "recipient": {"id": account}, "timestamp": stamp,
         "message": {"mid": mid, "text": text}}]}]}
    return json.dumps(envelope).replace("/", "\\/").encode()


class SentTasks(list):
    """Stands in for Celery's send_task: records (name, args, countdown)."""

    def __call__(self, name: str, args: tuple, countdown: float) -> None:
        self.append((name, args, countdown))


def in_process_runtime(store, settings, send_task, *, graph=None, handlers=None, instagram_graph=None):
    """A Runtime for in-process tests: `send_task` stands in for Celery (recording, or a real
    app's); handlers are the configured ones unless given; no inline delivery, so that tests see
    each drain task the scheduler starts."""
    from workers.delivery.plugins import load_handlers
    from workers.scheduler import Scheduler
    from workers.stage import Runtime

    scheduler = Scheduler(store.flags, store.queues, send_task, visibility_timeout=60,
                          coalesce_seconds=settings.hydration.coalesce_seconds)
    return Runtime(settings, store, graph, load_handlers(settings) if handlers is None else handlers,
                   scheduler, instagram_graph=instagram_graph)
