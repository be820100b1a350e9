"""Encryption at rest: what inbox-relay stores (inbox rows, task bodies, queued events, dead letters,
listing progress) is sealed with Fernet under the configured keys; the first key seals, all open."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from workers.errors import RelayError

# Every Fernet token starts so (version byte 0x80, then a timestamp); JSON never does. Data
# written before keys were configured is read as it is.
TOKEN_PREFIX = b"gAAAAA"


class DecryptError(RelayError):
    """Stored data is encrypted, and no configured key opens it."""


def new_key() -> str:
    """A new random key, as `[security] encryption_keys` takes it."""
    return Fernet.generate_key().decode("ascii")


def check_key(key: str) -> None:
    """ValueError unless `key` is a Fernet key (32 random bytes, URL-safe base64)."""
    Fernet(key)


class Codec:
    """Seals and opens stored bytes; with no keys, stores them as they are."""

    def __init__(self, keys: tuple[str, ...] = ()):
        self._fernet = MultiFernet([Fernet(key) for key in keys]) if keys else None

    @property
    def enabled(self) -> bool:
        """Whether data is sealed on write."""
        return self._fernet is not None

    def seal(self, data: bytes) -> bytes:
        """`data` encrypted under the first key (unchanged without keys)."""
        return self._fernet.encrypt(data) if self._fernet else data

    def open(self, data: bytes, *, what: str = "stored data") -> bytes:
        """`data` decrypted (data that was never encrypted is returned as it is)."""
        if not data.startswith(TOKEN_PREFIX):
            return data
        if self._fernet is None:
            raise DecryptError(f"{what} is encrypted, but no encryption key is configured "
                               "([security] encryption_keys or INBOX_RELAY_ENCRYPTION_KEYS)")
        try:
            return self._fernet.decrypt(data)
        except InvalidToken:
            raise DecryptError(f"{what} is encrypted under a key that is not configured") from None

    def reseal(self, data: bytes, *, what: str = "stored data") -> bytes:
        """`data` sealed again under the first key, whichever key (or none) sealed it before."""
        return self.seal(self.open(data, what=what))

    def seal_text(self, text: str) -> str:
        """`seal` for text (a Fernet token is ASCII)."""
        return self.seal(text.encode("utf-8")).decode("utf-8")

    def open_text(self, text: str, *, what: str = "stored data") -> str:
        """`open` for text."""
        return self.open(text.encode("utf-8"), what=what).decode("utf-8")
