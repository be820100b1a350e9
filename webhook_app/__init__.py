"""The web side of inbox-relay: Flask app factory, webhook routes, the inbox and its relay."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from typing import TYPE_CHECKING

from webhook_app.inbox import Inbox
from webhook_app.relay import Relay, celery_publisher
from workers.config import Settings, load_settings

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebState:
    """What the routes need: settings, the inbox and the relay that drains it."""

    settings: Settings
    inbox: Inbox
    relay: Relay


def create_app(settings: Settings | None = None, *, start_relay: bool = True) -> "Flask":
    """The Flask app; reads INBOX_RELAY_CONFIG when no settings are given."""
    # Flask is imported here so that the CLI can read the inbox without loading a web framework.
    from flask import Flask

    from webhook_app.routes import blueprint
    from workers.celery_config import create_celery

    settings = settings or load_settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    inbox = Inbox(settings.data_dir / "inbox.sqlite3")
    relay_inbox = Inbox(inbox.path, synchronous="NORMAL")
    relay = Relay(relay_inbox, celery_publisher(create_celery(settings)))
    app.extensions["inbox_relay"] = WebState(settings, inbox, relay if start_relay else None)
    app.register_blueprint(blueprint)
    if start_relay:
        relay.ensure_running()
    return app
