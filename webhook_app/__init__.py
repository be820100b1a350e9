"""The HTTP edge of inbox-relay: the Flask app factory; routes, signature check, server settings."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from webhook_app.commit import GroupCommit, event_loop_gathering
from webhook_app.keys import CurrentKeys
from webhook_app.state import WebState
from workers.inbox.database import INBOX_FILE, Inbox
from workers.inbox.wakeup import WAKE_FD_ENV, PipeWakeup
from workers.runtime.config import load_settings
from workers.runtime.web_relay import build_relay
from workers.settings import Settings
from workers.state import Store

if TYPE_CHECKING:
    from flask import Flask


def create_app(settings: Settings | None = None, *, start_relay: bool = True) -> Flask:
    """The Flask app; reads INBOX_RELAY_CONFIG when no settings are given."""
    from flask import Flask

    from webhook_app.probes import probes
    from webhook_app.routes import DeliveryEndpoint, blueprint

    settings = settings or load_settings()
    app = Flask(__name__)
    inbox = Inbox(settings.data_dir / INBOX_FILE)
    record = GroupCommit(inbox.append_arrivals, event_loop_gathering()).append
    keys = CurrentKeys(settings)
    state = WebState(settings, inbox, record, _relay_waker(settings, start_relay), keys,
                     Store(settings.redis_store_url, codec=keys.codec))
    app.extensions["inbox_relay"] = state
    app.wsgi_app = DeliveryEndpoint(app)  # type: ignore[method-assign]
    app.register_blueprint(blueprint)
    app.register_blueprint(probes)
    return app


def _relay_waker(settings: Settings, start_relay: bool) -> Callable[[], None]:
    """Wake the master's relay (webhook_app.gunicorn_conf), else run a relay thread in this process."""
    if os.environ.get(WAKE_FD_ENV):
        return PipeWakeup(None, int(os.environ[WAKE_FD_ENV])).set
    if not start_relay:
        return lambda: None
    relay = build_relay(settings)
    relay.ensure_running()

    def wake() -> None:
        relay.ensure_running()  # again after a fork: threads do not survive one
        relay.wake()
    return wake
