"""Group commit: concurrent appends share transactions, each gets its own row, errors reach all."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.harness import present, wait_for
from webhook_app.commit import GroupCommit
from workers.inbox.database import Inbox


def test_appends_waiting_for_a_commit_share_the_next_one(tmp_path):
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    first_commit_may_end, batches = threading.Event(), []

    def write_many(bodies: list[bytes]) -> list[int]:
        batches.append(len(bodies))
        if len(batches) == 1:
            first_commit_may_end.wait(10)  # the others queue up behind this commit meanwhile
        return inbox.append_many(bodies)

    commit = GroupCommit(write_many)
    with ThreadPoolExecutor(9) as pool:
        first = pool.submit(commit.append, b"0")
        wait_for(lambda: batches, message="the first commit")
        rest = [pool.submit(commit.append, b"%d" % n) for n in range(1, 9)]
        wait_for(lambda: len(commit._waiting) == 8, message="eight appends waiting")
        first_commit_may_end.set()
        ids = [first.result(10)] + [future.result(10) for future in rest]
    assert batches == [1, 8], "the eight waiting appends share one transaction"
    rows = {delivery.id: delivery.body for delivery in inbox.list(limit=20)}
    assert [rows[i] for i in ids] == [b"%d" % n for n in range(9)], "each gets the id of its own row"


def test_a_failed_commit_fails_every_append_of_its_batch_and_the_next_batch_still_runs(tmp_path):
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    calls = []

    def write_many(bodies: list[bytes]) -> list[int]:
        calls.append(bodies)
        if len(calls) == 1:
            raise OSError("disk full")
        return inbox.append_many(bodies)

    commit = GroupCommit(write_many)
    with pytest.raises(OSError, match="disk full"):
        commit.append(b"lost")
    assert present(inbox.get(commit.append(b"kept"))).body == b"kept"


def test_many_threads_appending_at_once_all_land_once(tmp_path):
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    commit = GroupCommit(inbox.append_many)
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda n: commit.append(b"%d" % n), range(400)))
    assert len(set(ids)) == 400
    assert sorted(d.body for d in inbox.list(limit=1000)) == sorted(b"%d" % n for n in range(400))


def test_an_interrupted_leader_fails_its_batch_and_strands_nobody(tmp_path):
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    interrupts = [KeyboardInterrupt()]

    def gather() -> None:
        if interrupts:
            raise interrupts.pop()

    commit = GroupCommit(inbox.append_many, gather)
    with pytest.raises(KeyboardInterrupt):
        commit.append(b"interrupted")
    next_row = present(inbox.get(commit.append(b"next")))
    assert next_row.body == b"next", "the next append leads a commit of its own"
