"""What `inbox-relay run` tells the other processes about its parts: running, or restarting.

The supervisor writes a small JSON file in data_dir; `status` and `/readyz` read it. A file, not
the store: the store may be the very part that is down.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from workers.settings import Settings

BOARD_FILE = "components.json"


@dataclass(frozen=True)
class Component:
    """One supervised part as last seen: `restarting` names the exit and when it starts again."""

    name: str
    state: str                      # "running" or "restarting"
    restarts: int = 0               # since `run` started
    last_exit_code: int | None = None
    last_exit_at: float | None = None
    next_start_at: float | None = None

    def summary(self) -> str:
        """One line for `status` and `/readyz`."""
        if self.state == "running":
            return "running" + (f" (restarted {self.restarts} times)" if self.restarts else "")
        wait = max(0.0, (self.next_start_at or 0) - time.time())
        return (f"restarting: exited with code {self.last_exit_code} ({self.restarts} restarts); "
                f"next start in {wait:.0f}s")


def board_path(settings: Settings) -> Path:
    """The file the supervisor of this data_dir writes."""
    return settings.data_dir / BOARD_FILE


def write_board(path: Path, components: list[Component]) -> None:
    """Replace the board in one rename; a full disk only leaves the previous board in place."""
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_text(json.dumps({"pid": os.getpid(), "at": time.time(),
                                         "components": [asdict(c) for c in components]}))
        temporary.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()


def read_board(path: Path) -> list[Component]:
    """The components a live supervisor reported; none when no supervisor runs."""
    try:
        board = json.loads(path.read_text())
        os.kill(int(board["pid"]), 0)  # a board left by a supervisor that has gone says nothing
        return [Component(**entry) for entry in board["components"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def clear_board(path: Path) -> None:
    """The supervisor has stopped."""
    with contextlib.suppress(OSError):
        path.unlink()
