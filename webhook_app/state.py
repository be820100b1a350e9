"""What the routes share: settings, the inbox and how to record in it, the store, the codec, and how
to wake the relay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

from webhook_app.keys import CurrentKeys
from workers.inbox.database import Inbox
from workers.inbox.schema import Arrival
from workers.settings import Settings
from workers.state import Store


@dataclass(frozen=True)
class WebState:
    """The app's collaborators, made once by create_app."""

    settings: Settings
    inbox: Inbox                        # reads (probes); requests record through `record`
    record: Callable[[Arrival], int]    # a sealed body and its API version, durably; its row id
    wake_relay: Callable[[], None]
    codec: CurrentKeys                  # seals bodies under the keys the file names now
    store: Store


def web_state() -> WebState:
    """The state of the app serving this request."""
    return current_app.extensions["inbox_relay"]
