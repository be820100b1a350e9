"""Which Redis answers are waits (every stage retries them) and which are bugs (fail once)."""

import kombu.exceptions
import pytest
import redis

from workers.state.waits import is_wait

WAITS = [
    redis.ConnectionError("Connection closed by server."),
    redis.TimeoutError("Timeout reading from socket"),
    redis.BusyLoadingError("Redis is loading the dataset in memory"),
    redis.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
    redis.ReadOnlyError("You can't write against a read only replica."),
    redis.ResponseError("MISCONF Errors writing to the AOF file: No space left on device"),
    redis.ResponseError("Command # 1 (ZADD unacked_index 1.0 tag) of pipeline caused error: MISCONF Errors"),
    redis.ResponseError("Error running script (call to f_1): @user_script:6: @user_script: 6: -MISCONF x"),
    kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
    ConnectionRefusedError(111, "Connection refused"),
]
BUGS = [
    redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    redis.ResponseError("ERR unknown command 'OOMX'"),
    ValueError("Expecting value: line 1 column 1 (char 0)"),
    KeyError("entry"),
]


@pytest.mark.parametrize("error", WAITS, ids=lambda e: f"{type(e).__name__}:{str(e)[:30]}")
def test_store_refusals_and_outages_are_waits(error):
    assert is_wait(error)


@pytest.mark.parametrize("error", BUGS, ids=lambda e: f"{type(e).__name__}:{str(e)[:30]}")
def test_bad_data_and_bugs_are_not_waits(error):
    assert not is_wait(error)


def test_an_attribute_error_inside_a_broker_client_is_a_wait_and_ours_is_a_bug():
    import kombu.connection

    from workers.state.waits import is_wait

    # kombu's code, as a connection torn down under a call leaves it: 'NoneType' has no attribute
    broken = kombu.connection.Connection.__new__(kombu.connection.Connection)
    with pytest.raises(AttributeError) as inside:
        broken.default_channel  # noqa: B018 (the attribute access is the call under test)
    assert is_wait(inside.value)
    with pytest.raises(AttributeError) as ours:
        None.nothing  # type: ignore[attr-defined]  # noqa: B018
    assert not is_wait(ours.value)
