"""Which store and broker errors are waits: Redis will answer again once it has room or is back.

A full disk (MISCONF), `maxmemory` reached (OOM), a replica that cannot take writes (READONLY), a
Redis still loading its data (LOADING) and lost connections all pass by themselves or once an
operator frees room; none says anything is wrong with the work. Every stage waits and retries on
them, and never fails a delivery for good because of them.
"""

from __future__ import annotations

import kombu.exceptions
import redis

# Redis reports a failed background save (the disk is full) only in the message text.
_WAIT_PREFIXES = ("MISCONF", "OOM", "READONLY", "LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN")
STORE_ERRORS = (redis.RedisError, kombu.exceptions.OperationalError, ConnectionError, TimeoutError)


def is_wait(exc: BaseException) -> bool:
    """Whether `exc` is the store or the broker saying "not now" rather than "never"."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError,
                        ConnectionError, TimeoutError, redis.OutOfMemoryError, redis.ReadOnlyError)):
        return True
    if not isinstance(exc, redis.ResponseError):
        return False
    # In a pipeline, Redis's answer comes after "Command # 1 (ZADD ...) of pipeline caused error: ".
    answer = str(exc).rsplit("caused error: ", 1)[-1]
    return answer.lstrip().startswith(_WAIT_PREFIXES)
