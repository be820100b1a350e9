"""The faults of `bench/chaos.py --full-disk` and `--redis-oom`: room runs out for FAULT_SECONDS
while the load goes on, then comes back; and what the report checks after them.

Each fault is a context manager (room taken on entry, given back on exit) plus a `squeeze` that
takes again whatever room the relay freed meanwhile (a pruned inbox, a drained queue): the fault
must hold for its whole window, not only at its first write.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

FAULT_SECONDS = 18.0
FAULT_AT = 0.2           # share of the load sent before the fault begins
TMPFS_SIZE = "8m"
OOM_MARGIN = 64 * 1024   # maxmemory this far above used_memory: a few writes, then OOM
ALARMS = ("failed for good", "Unrecoverable error", "WorkerLostError", "WORKER TIMEOUT")


def require_root() -> None:
    """Mounting a tmpfs needs root; say so plainly rather than fail on mount's message."""
    if os.geteuid() != 0:
        print("--full-disk mounts a tmpfs as a web node's data_dir: run it as root", file=sys.stderr)
        raise SystemExit(2)


@contextlib.contextmanager
def small_tmpfs(directory: Path) -> Iterator[Path]:
    """`directory` on a small tmpfs of its own, so that filling it costs seconds and no real disk;
    unmounted lazily (umount -l) even when the run fails, as processes may still hold files in it."""
    directory.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(directory)],
                   check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def fill(filler: Path) -> int:
    """Append to `filler` until the disk refuses a byte more (chunks down to 512 bytes, so that no
    gap a small SQLite page could use is left); returns the size of the filler."""
    with open(filler, "ab", buffering=0) as out:
        for size in (1 << 20, 1 << 16, 1 << 12, 512):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"f" * size)
        return out.tell()


@contextlib.contextmanager
def disk_full(data_dir: Path) -> Iterator[Callable[[], object]]:
    """data_dir's disk full of a filler file; deleted on exit: the room comes back at once."""
    filler = data_dir / "filler"
    fill(filler)
    try:
        yield lambda: fill(filler)
    finally:
        filler.unlink(missing_ok=True)


@contextlib.contextmanager
def redis_out_of_memory(client: redis.Redis) -> Iterator[Callable[[], object]]:
    """Redis at its maxmemory with noeviction, as one at its limit is: writes answer OOM; squeezing
    lowers maxmemory as the workers drain queues. The old settings come back on exit, retried while
    Redis is down (a chaos run may kill it meanwhile; a restarted one has its defaults anyway)."""
    before = client.config_get("maxmemory*")

    def squeeze() -> None:
        used = int(client.info("memory")["used_memory"])
        limit = int(client.config_get("maxmemory")["maxmemory"] or 0) or used + OOM_MARGIN
        client.config_set("maxmemory", min(limit, used + OOM_MARGIN))

    client.config_set("maxmemory-policy", "noeviction")
    squeeze()
    try:
        yield squeeze
    finally:
        policy, maxmemory = before["maxmemory-policy"], before["maxmemory"]
        assert policy is not None and maxmemory is not None  # both read by CONFIG GET above
        _retry(lambda: client.config_set("maxmemory-policy", policy)
               and client.config_set("maxmemory", maxmemory), seconds=60)


def _retry(call: Callable[[], object], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError):
            return bool(call())
        time.sleep(0.5)
    return False


class Fault(threading.Thread):
    """Holds a fault for FAULT_SECONDS once FAULT_AT of the load is sent; `log` says when."""

    def __init__(self, name: str, hold: Callable[[], contextlib.AbstractContextManager],
                 sent: Callable[[], int], total: int):
        super().__init__(daemon=True)
        self.name, self.hold, self.sent, self.total = name, hold, sent, total
        self.log: list[str] = []

    def run(self) -> None:
        while self.sent() < self.total * FAULT_AT:
            time.sleep(0.05)
        try:
            with self.hold() as squeeze:
                self.log.append(f"{self.name} from delivery {self.sent()}")
                until = time.monotonic() + FAULT_SECONDS
                while time.monotonic() < until:
                    with contextlib.suppress(redis.RedisError):
                        squeeze()
                    time.sleep(0.5)
            self.log.append(f"{self.name} over at delivery {self.sent()} ({FAULT_SECONDS:g} s)")
        except Exception as exc:  # the report says the fault did not happen as planned
            self.log.append(f"{self.name} FAILED: {type(exc).__name__}: {exc}")


def answers(results: list[tuple[bytes, str, int]]) -> tuple[str, bool]:
    """Requests by status (200, 503, other codes, refused: no answer at all) as a line; True when
    every one is what Meta may see: 200 or 503, and 400 only for poison (never refused, never
    another 5xx)."""
    count = Counter(status for _, _, status in results)
    other = {code: n for code, n in sorted(count.items()) if code not in (0, 200, 503)}
    line = (f"200: {count[200]}, 503: {count[503]}, other: {sum(other.values())} {other or ''}, "
            f"refused: {count[0]}")
    fine = all(status in (200, 503) or (status == 400 and role == "poison") for _, role, status in results)
    return line, fine


def alarms(logs: list[Path]) -> list[str]:
    """The lines that say a part died or gave up: in any log, ALARMS; in a web log, its gunicorn
    worker booted more than once (the master restarted it)."""
    found = []
    for path in logs:
        text = path.read_text(errors="replace")
        found += [f"{path.name}: {line.strip()}" for line in text.splitlines()
                  if any(alarm in line for alarm in ALARMS)]
        if text.count("Booting worker") > 1:
            found.append(f"{path.name}: gunicorn booted its worker {text.count('Booting worker')} times")
    return found
