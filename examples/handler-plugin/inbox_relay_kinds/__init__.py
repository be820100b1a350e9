"""An example inbox-relay handler plugin: one line per event, its id and kind, appended to a file."""

from __future__ import annotations

import fcntl
from pathlib import Path

from workers.plugin import Event

KINDS = None  # accept every kind; a tuple such as ("message", "echo") would narrow it


class KindsHandler:
    """Appends `<event id> <kind>` to `path` for every event it is given."""

    kinds = KINDS
    path_options = ("path",)  # options naming files: inbox-relay makes them relative to its config

    def __init__(self, *, name: str, path: str):
        # Options come from the [[handlers]] table as keyword arguments; a bad one stops start-up.
        self.name = name
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def handle(self, event: Event) -> None:
        """Write one line; raising here would ask inbox-relay to try the event again later."""
        with open(self.path, "a", encoding="utf-8") as out:
            # Several worker processes share the file: the lock keeps their lines whole.
            fcntl.flock(out, fcntl.LOCK_EX)
            out.write(f"{event.id} {event.kind}\n")
