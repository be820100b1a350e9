"""kombu's Redis transport, with its acknowledgement and restore paths guarded, so a worker
outlives a Redis that is full, out of memory or gone.

Two things killed a worker here (Celery calls an error it does not expect unrecoverable):
- Redis refusing a command (OOM at `maxmemory`, MISCONF on a full disk) inside an ack, a reject,
  a restore, the queue declaration of a reconnect or the BRPOP that waits for a message: a plain
  ResponseError, which kombu does not count as a connection error;
- closing a connection that was already closed, after Redis went away: the channel's restore of
  unacknowledged messages builds a client from a transport whose `client` is None
  (AttributeError: 'NoneType' object has no attribute 'hostname').
Both become a connection error here: Celery logs it, reconnects and goes on. What was not
acknowledged stays in kombu's unacknowledged set and is handed out again after the visibility
timeout (at least once; handlers' done marks absorb the repeat).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import kombu.transport
import redis
from kombu.transport import redis as kombu_redis

from workers.state.waits import is_wait

Fn = TypeVar("Fn", bound=Callable[..., Any])


class StoreWait(redis.ConnectionError):
    """Redis refused for now (full, out of memory, closed): a connection error to kombu."""


def _waits_as_connection_errors(method: Fn) -> Fn:
    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except redis.ResponseError as exc:
            if is_wait(exc):
                raise StoreWait(f"redis refused for now ({type(exc).__name__})") from None
            raise
    return guarded  # type: ignore[return-value]


class GuardedQoS(kombu_redis.QoS):
    """kombu's ack emulation; a Redis refusal in it is a connection error."""

    append = _waits_as_connection_errors(kombu_redis.QoS.append)
    ack = _waits_as_connection_errors(kombu_redis.QoS.ack)
    reject = _waits_as_connection_errors(kombu_redis.QoS.reject)
    restore_visible = _waits_as_connection_errors(kombu_redis.QoS.restore_visible)
    restore_by_tag = _waits_as_connection_errors(kombu_redis.QoS.restore_by_tag)

    def restore_unacked(self, client: Any = None) -> Any:
        """Give back what this channel holds; left for the visibility timeout if Redis refuses."""
        if self.channel.connection.client is None:
            raise StoreWait("the connection is already closed")
        return _waits_as_connection_errors(super().restore_unacked)(client)


class GuardedChannel(kombu_redis.Channel):
    """kombu's Redis channel with the guarded QoS."""

    QoS = GuardedQoS
    # Declaring the queue on (re)connect, its length, and moving messages: all may meet OOM.
    # BRPOP writes (it pops), so a full disk answers it with MISCONF too.
    _brpop_read = _waits_as_connection_errors(kombu_redis.Channel._brpop_read)  # type: ignore[attr-defined]
    queue_declare = _waits_as_connection_errors(kombu_redis.Channel.queue_declare)
    _size = _waits_as_connection_errors(kombu_redis.Channel._size)
    _get = _waits_as_connection_errors(kombu_redis.Channel._get)
    _put = _waits_as_connection_errors(kombu_redis.Channel._put)
    _has_queue = _waits_as_connection_errors(kombu_redis.Channel._has_queue)

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:  # closed already: nothing to connect to
            raise StoreWait("the connection is already closed")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]


class GuardedTransport(kombu_redis.Transport):
    """kombu's Redis transport with the guarded channel."""

    Channel = GuardedChannel


def install() -> None:
    """Make redis:// and rediss:// broker URLs use the guarded transport, in this process."""
    for scheme in ("redis", "rediss"):
        kombu.transport.TRANSPORT_ALIASES[scheme] = f"{__name__}:GuardedTransport"
