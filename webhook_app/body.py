"""Reading a delivery's body within limits, and telling a signed body that is no envelope."""

from __future__ import annotations

import json

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request

MAX_DEPTH = 64  # Meta's envelopes nest about 8 levels; far deeper is an attack, not a delivery


class BodyError(Exception):
    """The body cannot be taken; `status` is the answer (413 too large, 400 unreadable)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def read_body(request: Request, limit: int) -> bytes:
    """The raw body, at most `limit` bytes, whether sent with Content-Length or chunked.

    The limit is ours, not Flask's MAX_CONTENT_LENGTH: for a chunked body that would cut the
    stream at the limit silently, and a truncated body would fail its signature as a 403.
    """
    if request.content_length is not None and request.content_length > limit:
        raise BodyError(413, "body too large")
    try:
        body = request.stream.read(limit + 1)
    except RequestEntityTooLarge:
        raise BodyError(413, "body too large") from None
    except Exception:  # the client's framing (a bad chunk size, a cut connection): its fault
        raise BodyError(400, "body could not be read (bad framing)") from None
    if len(body) > limit:
        raise BodyError(413, "body too large")
    if request.content_length is not None and len(body) < request.content_length:
        raise BodyError(400, "body shorter than its Content-Length (bad framing)")
    return body


def envelope_problem(body: bytes) -> str | None:
    """Why a signed body is not a webhook envelope (400), or None when it is one."""
    try:
        envelope = _DECODER.decode(body.decode("utf-8"))
    except UnicodeDecodeError:
        return "body is not UTF-8"
    except (ValueError, RecursionError):
        return "body is not JSON (or nests too deep)"
    if not isinstance(envelope, dict) or not isinstance(envelope.get("entry"), list):
        return "body is not an object with an 'entry' list"
    # Fewer brackets than the limit cannot nest deeper: most deliveries skip the walk.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _deeper_than(envelope, MAX_DEPTH):
        return f"body nests deeper than {MAX_DEPTH} levels"
    return None


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")  # NaN and Infinity: Python accepts them, RFC 8259 not


_DECODER = json.JSONDecoder(parse_constant=_not_json)  # built once: json.loads with options builds one a call


def _deeper_than(value: object, limit: int) -> bool:
    """Whether JSON `value` nests deeper than `limit`; iterative, so depth cannot overflow it."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
