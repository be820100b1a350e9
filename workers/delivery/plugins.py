"""Handler plugins: how `[[handlers]]` tables are turned into them, through entry points."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from typing import Any

from workers.errors import PluginError
from workers.handler import Handler, LoadedHandler
from workers.settings import HandlerConfig, Settings

GROUP = "inbox_relay.handlers"
DEFAULT_PATH_OPTIONS = ("path",)


def load_handlers(settings: Settings) -> dict[str, LoadedHandler]:
    """Instantiate every configured handler; a plugin that does not load stops start-up. Modules
    beside the configuration file can be imported (`type = "python"`, `target = "mine:handle"`)."""
    if settings.source is not None and str(settings.source.resolve().parent) not in sys.path:
        sys.path.append(str(settings.source.resolve().parent))  # after everything installed
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


def path_options(type_name: str) -> tuple[str, ...]:
    """The options of a handler type that name files, which the configuration makes relative to
    itself: the type's `path_options` (a class attribute), else `path` alone."""
    try:
        factory = _factory(type_name)
    except PluginError:  # reported when the handlers load, with the installed types
        return DEFAULT_PATH_OPTIONS
    declared = getattr(factory, "path_options", DEFAULT_PATH_OPTIONS)
    return tuple(declared) if isinstance(declared, list | tuple) else DEFAULT_PATH_OPTIONS


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
