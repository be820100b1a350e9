"""What every state concern shares: one Redis client and a key namespace."""

from __future__ import annotations

from collections.abc import Iterable

import redis

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
    """Base of the state classes: each keeps one kind of state under the shared namespace."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self._redis, self._key = client, keys


def connect(url: str) -> redis.Redis:
    """A client with timeouts: a hung Redis must fail a call, not block it forever."""
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5,
                                health_check_interval=30, decode_responses=True)
