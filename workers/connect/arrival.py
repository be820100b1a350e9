"""Watching the configured `jsonl` handler's file for the records of events just sent."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from workers.settings import Settings

JSONL_DEFAULT_PATH = "./var/events.jsonl"  # the jsonl handler's own default


def jsonl_file(settings: Settings, kinds: Iterable[str]) -> Path | None:
    """The file of the first `jsonl` handler that takes every one of `kinds`, or None."""
    wanted = set(kinds)
    for handler in settings.handlers:
        if handler.type == "jsonl" and (handler.kinds is None or wanted <= set(handler.kinds)):
            return Path(os.path.normpath(str(handler.options.get("path", JSONL_DEFAULT_PATH))))
    return None


class JsonlWatch:
    """Reads the records appended to a jsonl file since the watch began."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def new_records(self) -> list[dict]:
        """Whole lines appended since the last call, as records (unreadable lines are skipped)."""
        if not self.path.exists():
            return []
        if self.path.stat().st_size < self.offset:  # truncated or replaced: read it again
            self.offset = 0
        with open(self.path, "rb") as source:
            source.seek(self.offset)
            data = source.read()
        complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits for the next call
        self.offset += len(complete)
        return [record for line in complete.splitlines() if (record := _record(line)) is not None]


def wait_for_records(watch: JsonlWatch, event_ids: list[str], *, timeout: float,
                     interval: float = 0.2, sleep: Callable[[float], None] = time.sleep) -> list[dict]:
    """The records of `event_ids`, in that order, once all are in the file; TimeoutError (naming the
    ids still missing) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    found: dict[str, dict] = {}
    while True:
        for record in watch.new_records():
            if record.get("id") in event_ids:
                found[record["id"]] = record
        missing = [event_id for event_id in event_ids if event_id not in found]
        if not missing:
            return [found[event_id] for event_id in event_ids]
        if time.monotonic() >= deadline:
            raise TimeoutError(", ".join(missing))
        sleep(interval)


def _record(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
