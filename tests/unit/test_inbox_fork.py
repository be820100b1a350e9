"""A process forked while the inbox is in use (gunicorn's master runs the relay) can still write."""

from __future__ import annotations

import os
import signal
import threading

from workers.inbox.database import Inbox


def test_a_child_forked_during_a_write_transaction_can_write(tmp_path):
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    inbox.append(b"before")
    in_transaction, may_commit = threading.Event(), threading.Event()

    def long_write() -> None:
        with inbox._write():  # a relay batch, say, in the middle of its transaction
            in_transaction.set()
            may_commit.wait(10)

    writer = threading.Thread(target=long_write)
    writer.start()
    assert in_transaction.wait(10)
    threading.Timer(0.3, may_commit.set).start()
    pid = os.fork()  # waits for the transaction to end, then forks with no connection open
    if pid == 0:
        signal.alarm(10)  # a child stuck on a lock it inherited the bookkeeping of dies here
        code = 1
        try:
            Inbox(tmp_path / "inbox.sqlite3").append(b"from the child")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    writer.join(10)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "the child could not write"
    assert [d.body for d in inbox.list()] == [b"from the child", b"before"]
    inbox.append(b"after")  # and the parent goes on with a new connection
    assert inbox.list(limit=1)[0].body == b"after"
