"""The names a handler plugin uses, and the only public ones: import them from here.

    from workers.plugin import Event, Handler, HandlerRejected, Retry

A handler is any object with a `name` and `handle(event: Event) -> None` (see `Handler`); it may
set `kinds` to the event kinds it accepts. Raising `Retry` (or any other exception) asks for the
event again later, with backoff; raising `HandlerRejected` dead-letters it at once. An optional
`close()` is called when a worker reloads a changed configuration and replaces the handler. The
options that name files, listed in a class attribute `path_options` (`("path",)` by default), come
relative to the configuration file.
"""

from workers.errors import HandlerRejected
from workers.errors import HandlerRetryable as Retry
from workers.handler import Handler
from workers.records import Event

__all__ = ["Event", "Handler", "HandlerRejected", "Retry"]
