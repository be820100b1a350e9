"""The keys a web process seals deliveries with, as the configuration file says now.

Rotating keys (`inbox-relay rotate-keys`) changes the file while `run` is up: workers reload it,
and so must the web, or it would go on sealing under a key the workers no longer hold once the old
one is removed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from workers.crypto import Codec
from workers.runtime.config import load_settings, source_mtime
from workers.settings import Settings

log = logging.getLogger(__name__)


class CurrentKeys:
    """A codec rebuilt when the configuration file changes (one stat per sealed delivery)."""

    def __init__(self, settings: Settings):
        self.source: Path | None = settings.source
        self.codec = Codec(settings.encryption_keys)
        self._stamp = source_mtime(self.source)

    def seal(self, data: bytes) -> bytes:
        """`data` sealed under the first key the file names now."""
        return self._current().seal(data)

    def _current(self) -> Codec:
        stamp = source_mtime(self.source)
        if stamp != self._stamp and self.source is not None:
            self._stamp = stamp
            try:
                self.codec = Codec(load_settings(self.source).encryption_keys)
                log.info("configuration changed; encryption keys reloaded")
            except Exception as exc:  # mid-edit or broken: keep sealing with the keys we have
                log.warning("configuration changed but cannot be read (%s); keeping the keys in use",
                            type(exc).__name__)
        return self.codec
