"""Targets of `python`-type handlers in the end-to-end tests; they run in the worker's pool processes.

Each keeps its files in the data directory of the system that runs it (beside the file named by
INBOX_RELAY_CONFIG, which `inbox-relay run` sets for its worker), so that the systems a test module
starts one after another never share state. Records hold ids, never message text.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from pathlib import Path

from workers.records import Event


def state_dir() -> Path:
    """The `var` directory of the running system."""
    return Path(os.environ["INBOX_RELAY_CONFIG"]).resolve().parent / "var"


def append_record(path: Path, record: dict) -> None:
    """Append one JSON line; whole lines with several pool processes writing."""
    with open(path, "a", encoding="utf-8") as out:
        fcntl.flock(out, fcntl.LOCK_EX)
        out.write(json.dumps(record) + "\n")


def always_fail(event: Event) -> None:
    """Count the attempt in always_fail.jsonl, then refuse: the event is retried until exhausted."""
    append_record(state_dir() / "always_fail.jsonl", {"id": event.id, "at": time.time()})
    raise RuntimeError(f"always_fail refuses {event.id}")


def fail_while_marked(event: Event) -> None:
    """Fail while the file `fail-<sender id>` exists; otherwise record the event in flaky.jsonl."""
    if (state_dir() / f"fail-{event.sender_id}").exists():
        raise RuntimeError(f"marker present for sender {event.sender_id}")
    append_record(state_dir() / "flaky.jsonl", event.to_dict())


def die_once(event: Event) -> None:
    """The first time an event comes, leave a marker (holding our pid) and SIGKILL this process.

    The second time, the marker is there: record the event in survivor.jsonl.
    """
    marker = state_dir() / f"died-{event.id}"
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        append_record(state_dir() / "survivor.jsonl", event.to_dict())
        return
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
