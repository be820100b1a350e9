"""What a handler is: the protocol a plugin fits, and a loaded one beside its `[[handlers]]` table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from workers.records import Event
from workers.settings import HandlerConfig


@runtime_checkable
class Handler(Protocol):
    """What a plugin's factory returns: a name and a `handle` that raises to ask for a retry."""

    name: str

    def handle(self, event: Event) -> None:
        """Take one event; raise to be tried again later (HandlerRejected: never again)."""


@dataclass(frozen=True)
class LoadedHandler:
    """A handler instance with the delivery policy of its `[[handlers]]` table."""

    handler: Any
    config: HandlerConfig

    @property
    def name(self) -> str:
        """The handler's name as configured (unique)."""
        return self.config.name

    def accepts(self, kind: str) -> bool:
        """Whether this handler takes events of `kind` (all kinds unless it declares `kinds`)."""
        kinds = self.config.kinds or getattr(self.handler, "kinds", None)
        return not kinds or kind in kinds
