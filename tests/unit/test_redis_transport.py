"""The guarded kombu transport: a Redis that refuses an ack or a reject leaves the worker able
to take the next message (the slot is free), while the message waits in Redis' unacked set."""

from unittest import mock

import pytest
import redis

from workers.runtime.redis_transport import GuardedQoS, StoreWait

OOM = redis.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")


def _qos_refused_by_redis() -> GuardedQoS:
    """A QoS of prefetch 1 holding one delivered message, on a Redis that refuses every write."""
    channel = mock.MagicMock()
    channel.conn_or_acquire.return_value.__enter__.return_value.transaction.side_effect = OOM
    qos = GuardedQoS(channel, prefetch_count=1)
    qos.restore_at_shutdown = False
    # kombu's QoS has the method; the celery-types stubs of kombu do not declare it
    qos._remove_from_indices = mock.Mock(  # type: ignore[attr-defined]
        return_value=mock.Mock(execute=mock.Mock(side_effect=OOM)))
    assert qos._delivered is not None  # made by QoS.__init__
    qos._delivered["tag-1"] = mock.Mock()
    assert not qos.can_consume()
    return qos


@pytest.mark.parametrize("give_back", [lambda q: q.ack("tag-1"), lambda q: q.reject("tag-1"),
                                       lambda q: q.reject("tag-1", requeue=True)],
                         ids=["ack", "reject", "reject-requeue"])
def test_a_refused_ack_or_reject_still_frees_the_prefetch_slot(give_back):
    qos = _qos_refused_by_redis()
    with pytest.raises(StoreWait):  # a connection error to kombu: Celery logs it and goes on
        give_back(qos)
    assert qos.can_consume()  # without this the worker took no message again, alive and idle


def test_a_bug_in_an_ack_is_not_hidden():
    qos = _qos_refused_by_redis()
    qos._remove_from_indices.return_value.execute.side_effect = (  # type: ignore[attr-defined]  # see above
        redis.ResponseError("WRONGTYPE x"))
    with pytest.raises(redis.ResponseError):
        qos.ack("tag-1")
