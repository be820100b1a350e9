"""What the console's pages read and act through, kept on the app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import Flask

from webhook_app.console.auth import LoginLimiter
from workers.events.log import EventLog
from workers.settings import Settings

if TYPE_CHECKING:
    from workers.stage import Runtime
    from workers.state import Store


@dataclass
class Collaborators:
    """What the pages read and act through; the Runtime (for replay) is built on first use."""

    settings: Settings
    journal: EventLog
    store: Callable[[], Store]
    runtime: Callable[[], Runtime]
    limiter: LoginLimiter = field(default_factory=LoginLimiter)


def collaborators(app: Flask) -> Collaborators:
    """The app's collaborators."""
    return app.extensions["inbox_relay"]
