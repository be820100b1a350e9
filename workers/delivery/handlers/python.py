"""The built-in `python` handler: calls a function of your own, named as "module:function"."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from workers.records import Event


def load_target(target: str) -> Callable[[Event], object]:
    """Import "package.module:function" (the part after ':' may be dotted) and return it."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"target: expected 'module:function', got {target!r}")
    try:
        found = importlib.import_module(module_name)
    except Exception as exc:  # a broken module can raise anything while importing
        raise ValueError(f"target {target!r}: cannot import {module_name!r}: "
                         f"{type(exc).__name__}: {exc}") from exc
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ValueError(f"target {target!r}: {module_name!r} has no attribute {attribute!r}") from None
    if not callable(found):
        raise ValueError(f"target {target!r} is not callable")
    return found


class PythonHandler:
    """Hands each event to `function(event)`; whatever it raises asks for a retry."""

    def __init__(self, *, name: str = "python", target: str):
        self.name = name
        self.target = target
        self.function = load_target(target)

    def handle(self, event: Event) -> None:
        """Call the target with the event (HandlerRejected from it dead-letters at once)."""
        self.function(event)
