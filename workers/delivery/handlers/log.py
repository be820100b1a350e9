"""The built-in `log` handler: one log line of ids per event, never its text."""

from __future__ import annotations

import logging

from workers.records import Event

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


class LogHandler:
    """Logs each event's id, kind, platform, account, mid and hydration state."""

    def __init__(self, *, name: str = "log", level: str = "info", logger: str = __name__):
        if level.lower() not in LEVELS:
            raise ValueError(f"level: expected one of {', '.join(LEVELS)}, got {level!r}")
        self.name = name
        self.level = LEVELS[level.lower()]
        self.log = logging.getLogger(logger)

    def handle(self, event: Event) -> None:
        """Log one line about the event; `message` and `raw` stay out (they hold the text)."""
        self.log.log(self.level, "event id=%s kind=%s platform=%s account_id=%s mid=%s hydration=%s",
                     event.id, event.kind, event.platform, event.account_id, event.mid,
                     event.hydration)
