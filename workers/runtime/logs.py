"""Logging for every process: text or one JSON object per line (`--log-format`), at `--log-level`."""

from __future__ import annotations

import json
import logging
import os
import sys

from workers import environment

LEVEL_ENV, FORMAT_ENV = environment.LOG_LEVEL, environment.LOG_FORMAT
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_BELOW_DEBUG = ("celery.worker.strategy", "celery.app.trace")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers; an exception shows as its type only."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON."""
        line = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                "message": record.getMessage(), "process": record.process}
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
        return json.dumps(line, ensure_ascii=False)


def say(line: str) -> None:
    """A line for the person running the command, on stdout. A reader that went away (`run |
    head -1`) must not stop the caller, which may still have processes to stop: what follows goes
    nowhere."""
    try:
        print(line, flush=True)
    except (BrokenPipeError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def level() -> str:
    """The level asked for (default info)."""
    return os.environ.get(LEVEL_ENV, "info")


def formatter() -> logging.Formatter:
    """The formatter asked for (default text)."""
    return JsonFormatter() if os.environ.get(FORMAT_ENV) == "json" else logging.Formatter(TEXT)


def configure() -> None:
    """The root logger of this process: one stderr handler, the asked level and format."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level().upper())
    logging.captureWarnings(True)  # a library's warning is a log line too (JSON with --log-format json)
    if level() != "debug":
        # Two lines per task ("received", "succeeded") drown the one line per delivery that says
        # where its events went; they are there at --log-level debug.
        for chatty in QUIET_BELOW_DEBUG:
            logging.getLogger(chatty).setLevel(logging.WARNING)
