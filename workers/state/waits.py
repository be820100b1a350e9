"""Which store and broker errors are waits: Redis will answer again once it has room or is back.

A full disk (MISCONF), `maxmemory` reached (OOM), a replica that cannot take writes (READONLY), a
Redis still loading its data (LOADING) and lost connections all pass by themselves or once an
operator frees room; none says anything is wrong with the work. Every stage waits and retries on
them, and never fails a delivery for good because of them.
"""

from __future__ import annotations

import re

import kombu.exceptions
import redis

from workers.errors import raised_in

CLIENT_PACKAGES = {"kombu", "amqp", "redis"}
# Redis reports a failed background save (the disk is full) only in the message text.
_WAIT_ANSWER = re.compile(r"(?:^|caused error: |: -)\s*"
                          r"(?:MISCONF|OOM|READONLY|LOADING|BUSY|TRYAGAIN|MASTERDOWN)\b")


def is_wait(exc: BaseException) -> bool:
    """Whether `exc` is the store or the broker saying "not now" rather than "never"."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError,
                        ConnectionError, TimeoutError, redis.OutOfMemoryError, redis.ReadOnlyError)):
        return True
    if isinstance(exc, AttributeError) and _raised_in_a_client(exc):
        return True  # a connection kombu or redis-py tore down under the call ('NoneType' ...)
    if not isinstance(exc, redis.ResponseError):
        return False
    # Redis's answer may come wrapped: "Command # 1 (ZADD ...) of pipeline caused error: MISCONF
    # ..." from a pipeline, "Error running script (...): @user_script:6: -MISCONF ..." from Lua.
    return _WAIT_ANSWER.search(str(exc)) is not None


def _raised_in_a_client(exc: BaseException) -> bool:
    """Whether the error came from inside the broker or store client (kombu, amqp, redis-py), not
    from inbox-relay's own code: a half-closed connection there is lost, not a bug of ours."""
    return raised_in(exc).split(".", 1)[0] in CLIENT_PACKAGES
