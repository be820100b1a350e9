"""The built-in `jsonl` handler: appends one event record per line to a file."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from workers.records import Event


class JsonlHandler:
    """Appends each event as one JSON line; whole lines even with many writer processes."""

    path_options = ("path",)  # relative to the configuration file

    def __init__(self, *, name: str = "jsonl", path: str = "./var/events.jsonl", mode: str = "600"):
        self.name = name
        self.path = Path(path)
        try:
            self.mode = int(mode, 8)  # "640" for a reader in your group: the lines hold message text
        except (TypeError, ValueError):
            raise ValueError(f"mode: expected octal permissions such as \"600\", got {mode!r}") from None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():  # made here with its mode: a umask would narrow a wider one
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, self.mode)
            os.fchmod(fd, self.mode)
            os.close(fd)

    def handle(self, event: Event) -> None:
        """Append the event record as one line."""
        line = (json.dumps(event.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, self.mode)
        try:
            # O_APPEND puts each write at the end; the lock keeps a long line from interleaving.
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
