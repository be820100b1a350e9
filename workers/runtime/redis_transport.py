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

An ack or reject that Redis refused still gives back the channel's prefetch slot: Celery logs
the error ("Couldn't ack") without reconnecting, and kombu frees the slot only after its Redis
write, so a worker whose acks met an OOM as many times as it prefetches stopped taking messages for
good, alive and idle (bench/chaos.py --redis-oom lost 224 of 300 events so).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import kombu.transport
import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

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


def _slot_given_back(method: Fn) -> Fn:
    """An ack or reject that frees the prefetch slot even when Redis refuses its write; the message
    stays in Redis' unacknowledged set, restored by whichever worker after the visibility timeout."""
    guarded = _waits_as_connection_errors(method)

    @functools.wraps(method)
    def release(self: virtual.QoS, delivery_tag: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return guarded(self, delivery_tag, *args, **kwargs)
        except redis.ConnectionError:
            virtual.QoS.ack(self, delivery_tag)  # the local slot only: kombu's own bookkeeping
            raise
    return release  # type: ignore[return-value]


class GuardedQoS(kombu_redis.QoS):
    """kombu's ack emulation; a Redis refusal in it is a connection error."""

    append = _waits_as_connection_errors(kombu_redis.QoS.append)
    ack = _slot_given_back(kombu_redis.QoS.ack)
    reject = _slot_given_back(kombu_redis.QoS.reject)
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
