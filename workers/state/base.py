"""What every state concern shares: one Redis client and a key namespace."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis

from workers.crypto import Codec

DAY = 86400


class Keys:
    """Namespaced Redis keys: `Keys("inbox-relay")("q", name)` is `inbox-relay:q:<name>`."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def __call__(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))


def text(reply: bytes | str) -> str:
    """A reply as str: `connect` decodes responses, which redis-py's types cannot know."""
    return reply.decode() if isinstance(reply, bytes) else reply


def members(reply: Iterable[object]) -> list[str]:
    """The members of a set, or of a sorted-set range read without scores, as str."""
    # redis-py types a range as members or (member, score) pairs; without scores it is members only.
    return [text(member) for member in reply if isinstance(member, bytes | str)]


class Concern:
    """Base of the state classes: each keeps one kind of state under the shared namespace;
    values that may hold message text are sealed with the codec."""

    def __init__(self, client: redis.Redis, keys: Keys, codec: Codec | None = None):
        self._redis, self._key, self._codec = client, keys, codec or Codec()

    def _dump(self, value: Any) -> str:
        return self._codec.seal_text(json.dumps(value))

    def _load(self, stored: bytes | str, *, what: str) -> Any:
        return json.loads(self._codec.open_text(text(stored), what=what))

    def _resealed(self, stored: bytes | str, *, what: str) -> str:
        return self._codec.reseal(text(stored).encode("utf-8"), what=what).decode("utf-8")


def connect(url: str) -> redis.Redis:
    """A client with timeouts: a hung Redis must fail a call, not block it forever."""
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5,
                                health_check_interval=30, decode_responses=True)
