"""Handler plugins: the protocol they fit and how `[[handlers]]` tables are turned into them."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from workers.errors import PluginError
from workers.records import Event
from workers.runtime.settings import HandlerConfig, Settings

GROUP = "inbox_relay.handlers"


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


def load_handlers(settings: Settings) -> dict[str, LoadedHandler]:
    """Instantiate every configured handler; a plugin that does not load stops start-up."""
    return {config.name: LoadedHandler(_instantiate(config), config) for config in settings.handlers}


def _instantiate(config: HandlerConfig) -> Any:
    factory = _factory(config.type)
    options = config.options
    try:
        handler = factory(name=config.name, **options)
    except Exception as exc:
        raise PluginError(f"handler '{config.name}' (type '{config.type}'): {exc}") from exc
    if not isinstance(handler, Handler) or not callable(getattr(handler, "handle", None)):
        raise PluginError(f"handler '{config.name}' (type '{config.type}') has no name and handle(event)")
    return handler


def _factory(type_name: str):
    found = [ep for ep in entry_points(group=GROUP) if ep.name == type_name]
    if not found:
        known = sorted({ep.name for ep in entry_points(group=GROUP)})
        raise PluginError(f"handler type '{type_name}' not found in entry-point group {GROUP} "
                          f"(installed: {', '.join(known) or 'none'})")
    try:
        return found[0].load()
    except Exception as exc:
        raise PluginError(f"handler type '{type_name}' failed to load: {exc}") from exc
