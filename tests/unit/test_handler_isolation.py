"""Handlers isolated in time, in-process: concurrency slots and the circuit breaker on the machine's
Redis (a prefixed namespace); drains are called where a deliver task would call them."""

from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager

import pytest

from tests.harness import SentTasks, in_process_runtime, wait_for
from tests.unit.test_delivery_order import Recorder, event
from workers.cli.status import status_report
from workers.delivery.dispatch import dispatch
from workers.delivery.drain import run_queue
from workers.delivery.plugins import LoadedHandler
from workers.errors import HandlerRetryable
from workers.records import DeliveryQueue
from workers.runtime.config import settings_from_dict
from workers.scheduler import DELIVER_TASK, TASK_ID
from workers.stage import Runtime

LEASE = 45.0


@contextmanager
def as_task(task_id: str):
    """Run the block as the Celery task `task_id` (the holder of the slots it takes)."""
    token = TASK_ID.set(task_id)
    try:
        yield
    finally:
        TASK_ID.reset(token)


@pytest.fixture
def sent():
    return SentTasks()


@pytest.fixture
def make_rt(store, sent):
    """A Runtime whose handlers are Recorders; `policy` are [[handlers]] keys for each of them."""
    def make(*names: str, **policy) -> Runtime:
        configs = [{"type": "test", "name": name, **policy} for name in names]
        settings = settings_from_dict({"meta": {"app_secrets": ["s"], "verify_token": "t"},
                                       "hydration": {"coalesce_seconds": 0}, "handlers": configs}, env={})
        handlers = {c.name: LoadedHandler(Recorder(c.name), c) for c in settings.handlers}
        return in_process_runtime(store, settings, sent, handlers=handlers)
    return make


def drain_as(rt: Runtime, name: str, some_event, task_id: str = "deliver-1", waits: int = 0):
    queue = DeliveryQueue.of(name, some_event)
    with as_task(task_id):
        return run_queue(rt.store, rt.handlers[name], queue, lease=LEASE, waits=waits)


def failing(rt: Runtime, name: str, *events) -> Recorder:
    handler = rt.handlers[name].handler
    for some_event in events:
        handler.failing[some_event.id] = HandlerRetryable("no answer within 10s")
    return handler


# -- concurrency slots ---------------------------------------------------------------------------
def test_a_handler_at_its_limit_is_not_called_and_its_queue_waits_longer_each_time(make_rt):
    rt = make_rt("http", concurrency=1)
    e1 = event("1", 1001)
    dispatch(rt, [e1])
    assert rt.store.slots.take("http", "deliver-busy", limit=1, ttl=LEASE)  # a hung call holds it
    first, waits = drain_as(rt, "http", e1)
    second, waits = drain_as(rt, "http", e1, waits=waits)
    later, _ = drain_as(rt, "http", e1, waits=5)
    assert rt.handlers["http"].handler.calls == []
    assert 0.125 <= first <= 0.25 and 0.25 <= second <= 0.5 and 4.0 <= later <= 8.0 and waits == 2
    rt.store.slots.give_back("http", "deliver-busy")
    assert drain_as(rt, "http", e1) == (None, 0)
    assert rt.handlers["http"].handler.handled == [e1.id]
    assert rt.store.slots.in_use("http") == 0, "the drain gave its slot back"


def test_slots_are_counted_per_handler_across_holders(store):
    assert store.slots.take("a", "t1", limit=2, ttl=LEASE)
    assert store.slots.take("a", "t2", limit=2, ttl=LEASE)
    assert not store.slots.take("a", "t3", limit=2, ttl=LEASE)
    assert store.slots.take("b", "t3", limit=2, ttl=LEASE), "another handler's slots are its own"
    assert store.slots.take("a", "t1", limit=2, ttl=LEASE), "a redelivered task keeps its slot"
    assert store.slots.in_use("a") == 2


def test_a_lease_of_a_killed_process_frees_itself(store):
    assert store.slots.take("a", "killed", limit=1, ttl=0.05)
    assert not store.slots.take("a", "next", limit=1, ttl=LEASE)
    wait_for(lambda: store.slots.take("a", "next", limit=1, ttl=LEASE), timeout=2,
             message="the expired lease to free its slot")


# -- the circuit breaker ---------------------------------------------------------------------------
def test_failures_in_a_row_pause_the_handler_and_its_events_wait_without_calls(make_rt):
    rt = make_rt("http", pause_after=3, pause_for=20)
    e1, other = event("1", 1001), event("other", 1002, customer="c2")
    handler = failing(rt, "http", e1, other)
    dispatch(rt, [e1, other])
    delays = [drain_as(rt, "http", e)[0] for e in (e1, other, e1)]
    assert delays[2] >= 20.0, "the third failure in a row opens the breaker"
    assert handler.calls == [e1.id, other.id, e1.id]
    paused_delay, _ = drain_as(rt, "http", other)
    assert handler.calls == [e1.id, other.id, e1.id], "called while paused"
    assert 18.0 <= paused_delay <= 22.0
    [report] = status_report(rt.settings, rt.store)["handlers"]
    assert report["paused"] and report["pauses_in_a_row"] == 1 and report["in_flight"] == 0


def test_a_success_between_failures_keeps_the_breaker_closed(make_rt):
    rt = make_rt("http", pause_after=3)
    e1, ok, e3 = event("1", 1001), event("ok", 1002, customer="c2"), event("3", 1003, customer="c3")
    failing(rt, "http", e1, e3)
    dispatch(rt, [e1, ok, e3])
    for some_event in (e1, e1, ok, e3, e3):
        drain_as(rt, "http", some_event)
    state = rt.store.breakers.state("http")
    assert state.paused_for == 0 and state.failures == 2


def test_the_probe_after_a_pause_reopens_it_for_twice_as_long_or_closes_it(make_rt):
    rt = make_rt("http", pause_after=2, pause_for=0.2)
    e1 = event("1", 1001)
    handler = failing(rt, "http", e1)
    dispatch(rt, [e1])
    drain_as(rt, "http", e1)
    drain_as(rt, "http", e1)
    wait_for(lambda: rt.store.breakers.state("http").paused_for == 0, timeout=3, message="the pause to end")
    drain_as(rt, "http", e1)  # the probe fails: paused again at once, for twice as long
    state = rt.store.breakers.state("http")
    assert state.pauses == 2 and 0.2 < state.paused_for <= 0.4
    wait_for(lambda: rt.store.breakers.state("http").paused_for == 0, timeout=3, message="the pause to end")
    del handler.failing[e1.id]
    assert drain_as(rt, "http", e1) == (None, 0)
    closed = rt.store.breakers.state("http")
    assert (closed.failures, closed.pauses, closed.since, closed.paused_for) == (0, 0, None, 0)
    assert handler.handled == [e1.id]


def test_a_handler_paused_past_its_max_age_dead_letters_what_waits_without_calling(make_rt):
    rt = make_rt("http", pause_after=1, pause_for=60, max_age=0.2)
    e1, e2 = event("1", 1001), event("2", 1002)
    handler = failing(rt, "http", e1)
    dispatch(rt, [e1, e2])
    drain_as(rt, "http", e1)  # fails: paused for a minute
    failing_since = rt.store.breakers.state("http").since
    wait_for(lambda: time.time() - failing_since >= 0.2, timeout=2, message="max_age to pass")
    assert drain_as(rt, "http", e1) == (None, 0)
    letters = {letter.event_id: letter for letter in rt.store.dead_letters.all()}
    assert set(letters) == {e1.id, e2.id} and handler.calls == [e1.id]
    assert letters[e1.id].attempts == 1 and letters[e2.id].attempts == 0
    assert "paused" in letters[e2.id].error and rt.store.queues.length(DeliveryQueue.of("http", e1).name) == 0


def test_a_handler_failing_past_its_max_age_dead_letters_even_while_its_probe_holds_the_slot(make_rt):
    # A queue that finds the one slot taken by the probe after a pause must not back off for up to
    # MAX_WAIT and come back later: its events are past max_age, so they go now, without a call.
    rt = make_rt("http", pause_after=5, max_attempts=100, max_age=0.2)
    e1, e2 = event("1", 1001), event("2", 1002, customer="c2")
    handler = failing(rt, "http", e1)
    dispatch(rt, [e1, e2])
    drain_as(rt, "http", e1)  # fails once: failing since now, not paused
    failing_since = rt.store.breakers.state("http").since
    assert failing_since is not None
    wait_for(lambda: time.time() - failing_since >= 0.2, timeout=2, message="max_age to pass")
    assert rt.store.slots.take("http", "probe", limit=1, ttl=LEASE)
    assert drain_as(rt, "http", e2, task_id="deliver-2")[0] is None  # nothing left to retry
    letters = {letter.event_id: letter for letter in rt.store.dead_letters.all()}
    assert set(letters) == {e2.id} and handler.calls == [e1.id]


def test_pause_after_zero_never_pauses(make_rt):
    rt = make_rt("http", pause_after=0, max_attempts=100)
    e1 = event("1", 1001)
    failing(rt, "http", e1)
    dispatch(rt, [e1])
    for _ in range(6):
        drain_as(rt, "http", e1)
    assert rt.store.breakers.state("http").paused_for == 0
    assert len(rt.handlers["http"].handler.calls) == 6


# -- inline delivery in ingest, hydrate and sync tasks ------------------------------------------
def inline(rt: Runtime) -> Runtime:
    """The Runtime of a worker: the task that queues events delivers them for up to 2 s."""
    return dataclasses.replace(rt, deliver_inline_for=2.0)


def test_a_handler_is_called_inline_once_it_has_answered_quickly_in_a_deliver_task(make_rt, sent):
    rt = inline(make_rt("jsonl"))
    e1, e2 = event("1", 1001), event("2", 1002, customer="c2")
    dispatch(rt, [e1])  # nothing known of it yet: it might hang, so not in this task
    assert sent == [(DELIVER_TASK, (DeliveryQueue.of("jsonl", e1).name,), 0.0)]
    assert rt.handlers["jsonl"].handler.calls == []
    assert drain_as(rt, "jsonl", e1) == (None, 0)
    dispatch(rt, [e2])
    assert len(sent) == 1 and rt.handlers["jsonl"].handler.handled == [e1.id, e2.id]


def test_the_dispatching_task_leaves_a_failing_or_busy_handler_to_deliver_tasks(make_rt, sent):
    rt = inline(make_rt("jsonl", "http", "slow"))
    e1 = event("1", 1001)
    for name in rt.handlers:
        rt.store.breakers.note_fast(name, seconds=600)
    rt.store.breakers.failed("http", threshold=5, pause=30, max_pause=600)  # it failed lately
    rt.store.slots.take("slow", "another-task", limit=1, ttl=LEASE)         # all its slots taken
    with as_task("ingest-1"):
        dispatch(rt, [e1])
    assert rt.handlers["jsonl"].handler.handled == [e1.id]
    assert rt.handlers["http"].handler.calls == [] and rt.handlers["slow"].handler.calls == []
    assert sorted(sent) == [(DELIVER_TASK, (DeliveryQueue.of("http", e1).name,), 0.0),
                            (DELIVER_TASK, (DeliveryQueue.of("slow", e1).name,), 0.25)]
    assert rt.store.slots.in_use("jsonl") == 0


def test_a_slow_call_keeps_the_handler_out_of_inline_delivery(make_rt, sent):
    rt = inline(make_rt("slow"))
    e1, e2 = event("1", 1001), event("2", 1002, customer="c2")
    rt.store.breakers.note_fast("slow", seconds=600)
    started = time.monotonic()
    rt.handlers["slow"].handler.handle = lambda ev: wait_for(lambda: time.monotonic() - started > 0.6)
    dispatch(rt, [e1])
    assert sent == [] and rt.store.breakers.state("slow").slow
    dispatch(rt, [e2])
    assert sent == [(DELIVER_TASK, (DeliveryQueue.of("slow", e2).name,), 0.0)]
