"""X-Hub-Signature-256 verification: HMAC-SHA256 of the raw body, any of several secrets."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

PREFIX = "sha256="


class SignatureError(Exception):
    """The delivery's signature is missing, malformed or matches no configured secret."""


def sign(secret: str, body: bytes) -> str:
    """The header value Meta sends for `body` signed with `secret`."""
    return PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secrets: Iterable[str]) -> None:
    """Raise SignatureError unless `header` is the signature of `body` under one of `secrets`."""
    if not header:
        raise SignatureError("missing X-Hub-Signature-256 header")
    if not header.startswith(PREFIX) or len(header) != len(PREFIX) + 64:
        raise SignatureError("malformed X-Hub-Signature-256 header")
    given = header.lower().encode("ascii", "replace")
    # Compare against every secret, even after a match, so timing tells nothing.
    matches = [hmac.compare_digest(sign(secret, body).encode("ascii"), given) for secret in secrets]
    if not any(matches):
        raise SignatureError("signature matches no configured app secret")
