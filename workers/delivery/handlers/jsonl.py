"""The built-in `jsonl` handler: appends one event record per line to a file."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from workers.records import Event


class JsonlHandler:
    """Appends each event as one JSON line; whole lines even with many writer processes."""

    def __init__(self, *, name: str = "jsonl", path: str = "./var/events.jsonl"):
        self.name = name
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def handle(self, event: Event) -> None:
        """Append the event record as one line."""
        line = (json.dumps(event.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # O_APPEND puts each write at the end; the lock keeps a long line from interleaving.
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
