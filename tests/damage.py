"""A data_dir with a real inbox of sealed deliveries and the private Redis that remembers it, and
the ways an inbox file gets damaged."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from tests.harness import message_body, write_config
from workers.crypto import Codec
from workers.inbox.database import INBOX_FILE, Inbox
from workers.inbox.watch import StoreWatch
from workers.runtime.config import load_settings
from workers.runtime.private_redis import ensure_embedded_redis
from workers.runtime.startup import prepare_encryption
from workers.state import Store

DELIVERIES = 50


class DataDir:
    """A config, its data_dir, and the private Redis this test process owns (stop() it)."""

    def __init__(self, *, keys: list[str] | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="ir-dmg-", dir="/tmp"))  # unix socket paths are short
        extra = {"security": {"encryption_keys": keys}} if keys else None
        self.config = write_config(self.dir / "c.toml", graph_url="http://127.0.0.1:9", accounts=[],
                                   extra=extra)
        self.settings = load_settings(self.config)
        self.redis = ensure_embedded_redis(self.settings, daemonize=False)
        self.store = Store(self.settings.redis_store_url)
        self.inbox_path = self.settings.data_dir / INBOX_FILE

    def fill(self, count: int = DELIVERIES) -> list[bytes]:
        """`count` sealed, unpublished deliveries, as `run` would have recorded them and told the
        store; the inbox is then closed (its WAL checkpointed into the file). Returns the bodies."""
        prepare_encryption(self.settings, self.store.memory)
        self.store.memory.mark_sealed()
        codec = Codec(self.settings.encryption_keys)
        bodies = [message_body("p1", "u1", f"m{n}", text="x" * 1500) for n in range(count)]
        inbox = Inbox(self.inbox_path)
        inbox.append_many([codec.seal(body) for body in bodies])
        StoreWatch(self.store, inbox).remember()
        self.snapshot = _copy_open(self.inbox_path, self.dir / "snapshot")
        inbox.suspend_for_fork()  # closes it: SQLite checkpoints the WAL into the file
        inbox.resume_after_fork()
        return bodies

    def restore_snapshot(self, *, with_wal: bool) -> None:
        """Put back the files as copied while the inbox was open (its rows still in the -wal)."""
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.inbox_path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.snapshot, self.inbox_path)
        if with_wal:
            shutil.copyfile(f"{self.snapshot}-wal", f"{self.inbox_path}-wal")

    def stop(self) -> None:
        """Stop the private Redis and remove the directory."""
        if self.redis is not None:
            self.redis.stop()
        if not os.environ.get("INBOX_RELAY_KEEP_TEST_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)


def _copy_open(path: Path, into: Path) -> Path:
    into.mkdir()
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{path}{suffix}", into / f"{path.name}{suffix}")
    return into / path.name


def truncate(path: Path, *, keep: float = 0.5) -> None:
    """Cut the file to a fraction of its size (0: empty)."""
    os.truncate(path, int(path.stat().st_size * keep))


def garble(path: Path, *, at: float, size: int) -> None:
    """Overwrite `size` bytes from a fraction of the file's size with bytes that mean nothing."""
    offset = int(path.stat().st_size * at)
    with open(path, "r+b") as out:
        out.seek(offset)
        out.write(bytes((n * 151 + 7) % 256 for n in range(size)))
