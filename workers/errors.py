"""The one error hierarchy of inbox-relay; every error pickles so that it can cross Celery."""

from __future__ import annotations


class RelayError(Exception):
    """Root of every error inbox-relay raises on purpose."""

    def __reduce__(self):
        return (self.__class__, self.args)


class ConfigError(RelayError):
    """The configuration is missing a key, has an unknown one, or a value of the wrong type."""


class AdminError(RelayError):
    """An administration request names something that does not exist or cannot be done."""


class PluginError(RelayError):
    """A handler plugin cannot be found, loaded or does not fit the Handler protocol."""


class GraphError(RelayError):
    """The Graph API answered with an error; subclasses say what to do about it.

    `status` is the HTTP status and `fbtrace_id` the id Meta's support asks for; `where` puts the
    three numbers and the trace id in one short, text-free phrase for a log line.
    """

    def __init__(self, message: str, code: int | None = None, subcode: int | None = None,
                 status: int | None = None, fbtrace_id: str | None = None):
        super().__init__(message, code, subcode, status, fbtrace_id)
        self.message, self.code, self.subcode = message, code, subcode
        self.status, self.fbtrace_id = status, fbtrace_id

    @property
    def where(self) -> str:
        """`HTTP 400 code 100/33 fbtrace_id AbC`: what identifies the answer, never its message."""
        parts = [f"HTTP {self.status}" if self.status else "no answer"]
        if self.code is not None:
            parts.append(f"code {self.code}" + (f"/{self.subcode}" if self.subcode is not None else ""))
        if self.fbtrace_id:
            parts.append(f"fbtrace_id {self.fbtrace_id}")
        return " ".join(parts)

    def __str__(self) -> str:
        return f"graph error {self.where}: {self.message}"


class GraphRetryable(GraphError):
    """A transient failure (codes 1, 2, HTTP 5xx, network): try again with backoff."""


class GraphThrottled(GraphError):
    """The account or app is throttled; `retry_after` is the wait the usage headers ask (0: unsaid)."""

    def __init__(self, message: str, code: int | None = None, subcode: int | None = None,
                 status: int | None = None, fbtrace_id: str | None = None, retry_after: float = 0.0):
        super().__init__(message, code, subcode, status, fbtrace_id)
        self.args = (message, code, subcode, status, fbtrace_id, retry_after)
        self.retry_after = retry_after


class GraphTokenInvalid(GraphError):
    """The access token is expired or revoked (codes 190, 102): pause the account."""


class GraphPermanent(GraphError):
    """The request will never succeed (e.g. a message beyond the 20 newest, a deleted one)."""


class HandlerRetryable(RelayError):
    """A handler asks to be tried again later."""


class HandlerRejected(RelayError):
    """A handler refuses the event for good: dead-letter it without further attempts."""


class InboxDamaged(RelayError):
    """The inbox file cannot be read: SQLite finds it malformed, truncated or not a database."""

    @classmethod
    def of(cls, path: object, reason: str) -> InboxDamaged:
        """The error for the inbox at `path`: the file, why, and what to do."""
        return cls(f"the inbox {path} is damaged ({reason}): move it aside with its -wal and -shm "
                   "files, then `inbox-relay inbox salvage MOVED_FILE` copies its readable "
                   "deliveries into a new inbox")


class InboxLost(RelayError):
    """The inbox holds less than the store remembers it held: emptied, replaced, or its WAL lost."""


def raised_in(exc: BaseException) -> str:
    """The module whose code raised `exc` (its traceback's last frame), "" if unknown: tells
    inbox-relay's own errors from a plugin's or a client library's."""
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    return str(frame.tb_frame.f_globals.get("__name__", "")) if frame is not None else ""
