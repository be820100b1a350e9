"""Delivery in-process: dispatch to per-handler conversation queues, drained in order.

The store is a prefixed namespace of the machine's Redis; the drain tasks are not run by Celery:
each test calls `drain` itself where a deliver task would, and records the tasks dispatch starts.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from tests.harness import SentTasks, in_process_runtime, wait_for
from workers.delivery.dispatch import dispatch
from workers.delivery.drain import drain
from workers.delivery.plugins import LoadedHandler
from workers.errors import HandlerRejected
from workers.records import DeliveryQueue, Event, Kind
from workers.runtime.config import settings_from_dict
from workers.scheduler import DELIVER_TASK
from workers.settings import HandlerConfig
from workers.stage import Runtime

PAGE = "P1"


class Recorder:
    """A handler that records every call; `failing[event id]` is raised for that event until removed."""

    def __init__(self, name: str):
        self.name = name
        self.failing: dict[str, Exception] = {}
        self.calls: list[str] = []    # every event id it was handed, failed or not
        self.handled: list[str] = []  # the ids it succeeded with

    def handle(self, event: Event) -> None:
        self.calls.append(event.id)
        if event.id in self.failing:
            raise self.failing[event.id]
        self.handled.append(event.id)


def event(name: str, timestamp: int, customer: str = "c1", kind: Kind = "message") -> Event:
    """A settled event from `customer` to the page; its conversation is the customer's."""
    return Event(id=f"evt_{name}", kind=kind, platform="messenger", account_id=PAGE,
                 sender_id=customer, recipient_id=PAGE, timestamp=timestamp, mid=f"m_{name}",
                 conversation_id=None, message={"id": f"m_{name}"}, hydration="complete", raw={})


@pytest.fixture
def sent():
    return SentTasks()


@pytest.fixture
def make_rt(store, sent):
    """A Runtime whose handlers are Recorders with the given delivery policy."""
    def make(*names: str, max_attempts: int = 8, max_age: float = 3600.0) -> Runtime:
        settings = settings_from_dict({"meta": {"app_secrets": ["s"], "verify_token": "t"},
                                       "hydration": {"coalesce_seconds": 0}}, env={})
        handlers = {name: LoadedHandler(Recorder(name), HandlerConfig(
            type="test", name=name, max_attempts=max_attempts, max_age=max_age)) for name in names}
        return in_process_runtime(store, settings, sent, handlers=handlers)
    return make


def run(rt: Runtime, handler: str, some_event: Event) -> float | None:
    """What the deliver task does with the queue of `some_event`'s conversation for `handler`."""
    return drain(rt.store, rt.handlers[handler], DeliveryQueue.of(handler, some_event))


def recorder(rt: Runtime, name: str) -> Recorder:
    return rt.handlers[name].handler


def queued(rt: Runtime, handler: str, some_event: Event) -> list[str]:
    return [r["id"] for r in rt.store.queues.peek(DeliveryQueue.of(handler, some_event).name)]


def test_events_dispatched_out_of_order_are_handed_in_timestamp_order(make_rt, sent):
    rt = make_rt("a")
    first, second, third, fourth = (event(str(n), 1700000000000 + n) for n in range(1, 5))
    dispatch(rt, [fourth, second])
    dispatch(rt, [third])
    dispatch(rt, [first])
    assert sent == [(DELIVER_TASK, (DeliveryQueue.of("a", first).name,), 0.0)]  # one task drains them all
    assert run(rt, "a", first) is None
    assert recorder(rt, "a").handled == [first.id, second.id, third.id, fourth.id]
    assert queued(rt, "a", first) == []


def test_a_failing_event_holds_back_its_conversation_for_that_handler_only(make_rt):
    rt = make_rt("a", "b")
    e1, e2 = event("1", 1001), event("2", 1002)
    other = event("other", 1003, customer="c2")
    recorder(rt, "a").failing[e1.id] = RuntimeError("down")
    dispatch(rt, [e1, e2, other])

    delay = run(rt, "a", e1)
    assert delay is not None and 0.5 <= delay <= 1.0  # first retry: about a second
    assert recorder(rt, "a").calls == [e1.id]         # e2 not handed while e1 fails
    assert queued(rt, "a", e1) == [e1.id, e2.id]
    assert run(rt, "a", e1) is not None and recorder(rt, "a").calls == [e1.id, e1.id]

    assert run(rt, "a", other) is None                # another conversation flows
    assert run(rt, "b", e1) is None                   # another handler flows
    assert recorder(rt, "a").handled == [other.id]
    assert recorder(rt, "b").handled == [e1.id, e2.id]


def test_a_recovered_event_releases_the_held_back_ones_in_order(make_rt):
    rt = make_rt("a")
    e1, e2, e3 = event("1", 1001), event("2", 1002), event("3", 1003)
    recorder(rt, "a").failing[e1.id] = RuntimeError("down")
    dispatch(rt, [e1, e2])
    assert run(rt, "a", e1) is not None
    dispatch(rt, [e3])
    del recorder(rt, "a").failing[e1.id]
    assert run(rt, "a", e1) is None
    assert recorder(rt, "a").handled == [e1.id, e2.id, e3.id]
    assert rt.store.dead_letters.all() == []


def test_after_max_attempts_the_event_is_dead_lettered_and_the_rest_flows(make_rt):
    rt = make_rt("a", max_attempts=3)
    e1, e2 = event("1", 1001), event("2", 1002)
    recorder(rt, "a").failing[e1.id] = RuntimeError("boom")
    dispatch(rt, [e1, e2])
    assert run(rt, "a", e1) is not None
    assert run(rt, "a", e1) is not None
    assert rt.store.dead_letters.all() == []
    assert run(rt, "a", e1) is None                   # third failure: given up, e2 goes on
    [letter] = rt.store.dead_letters.all()
    assert (letter.handler, letter.event_id, letter.attempts) == ("a", e1.id, 3)
    assert letter.error == "RuntimeError: boom" and letter.event == e1.to_dict()
    assert letter.first_failed_at <= letter.failed_at
    assert recorder(rt, "a").calls == [e1.id, e1.id, e1.id, e2.id]
    assert recorder(rt, "a").handled == [e2.id] and queued(rt, "a", e1) == []


def test_after_max_age_since_the_first_failure_the_event_is_dead_lettered(make_rt):
    rt = make_rt("a", max_attempts=100, max_age=0.05)
    e1, e2 = event("1", 1001), event("2", 1002)
    recorder(rt, "a").failing[e1.id] = RuntimeError("boom")
    dispatch(rt, [e1, e2])
    assert run(rt, "a", e1) is not None
    [(_, first_failure)] = [rt.store.progress.attempts("a", e1.id)]
    wait_for(lambda: time.time() - first_failure > 0.05, timeout=2, message="max_age to pass")
    assert run(rt, "a", e1) is None
    [letter] = rt.store.dead_letters.all()
    assert (letter.event_id, letter.attempts) == (e1.id, 2)
    assert recorder(rt, "a").handled == [e2.id]


def test_handler_rejected_dead_letters_at_once(make_rt):
    rt = make_rt("a")
    e1, e2 = event("1", 1001), event("2", 1002)
    recorder(rt, "a").failing[e1.id] = HandlerRejected("not for us")
    dispatch(rt, [e1, e2])
    assert run(rt, "a", e1) is None
    [letter] = rt.store.dead_letters.all()
    assert (letter.handler, letter.event_id, letter.attempts) == ("a", e1.id, 1)
    assert letter.error == "HandlerRejected: not for us"
    assert recorder(rt, "a").calls == [e1.id, e2.id] and recorder(rt, "a").handled == [e2.id]


def test_an_event_a_handler_succeeded_with_is_not_handed_again(make_rt, sent):
    rt = make_rt("a", "b")
    e1 = event("1", 1001)
    dispatch(rt, [e1])
    dispatch(rt, [e1])                                # Meta delivered it twice before the drain
    assert run(rt, "a", e1) is None
    assert rt.store.progress.is_done("a", e1.id)
    sent.clear()
    dispatch(rt, [e1])                                # and once more afterwards
    assert queued(rt, "a", e1) == [] and queued(rt, "b", e1) == [e1.id]
    assert sent == []                                 # b's task was started by the first dispatch
    assert run(rt, "a", e1) is None and run(rt, "b", e1) is None
    assert recorder(rt, "a").calls == [e1.id] and recorder(rt, "b").calls == [e1.id]


def test_an_event_done_by_the_time_its_turn_comes_is_dropped_unhanded(make_rt):
    rt = make_rt("a")
    e1 = event("1", 1001)
    dispatch(rt, [e1])
    rt.store.progress.mark_done("a", e1.id)           # another worker got there first
    assert run(rt, "a", e1) is None
    assert recorder(rt, "a").calls == [] and queued(rt, "a", e1) == []


# -- delivering in the task that queued the events (what the worker does) ---------------------------
def inline(rt: Runtime, seconds: float = 2.0) -> Runtime:
    for name in rt.handlers:  # only handlers that answered quickly lately are called inline
        rt.store.breakers.note_fast(name, seconds=600)
    return dataclasses.replace(rt, deliver_inline_for=seconds)


def test_the_dispatching_task_delivers_what_it_queued_without_task_messages(make_rt, sent):
    rt = inline(make_rt("a", "b"))
    e1, e2, other = event("1", 1002), event("2", 1001), event("other", 1003, customer="c2")
    dispatch(rt, [e1, e2, other])
    assert sent == []
    assert recorder(rt, "a").handled == [e2.id, e1.id, other.id] == recorder(rt, "b").handled
    assert queued(rt, "a", e1) == [] and queued(rt, "b", other) == []
    assert not rt.store.flags.is_claimed(DeliveryQueue.of("a", e1).name), "flags are given back"


def test_a_queue_another_task_drains_is_left_to_it(make_rt, sent):
    rt = inline(make_rt("a"))
    e1 = event("1", 1001)
    rt.store.flags.claim(DeliveryQueue.of("a", e1).name, ttl=60)  # a deliver task is on it
    dispatch(rt, [e1])
    assert recorder(rt, "a").calls == [] and queued(rt, "a", e1) == [e1.id] and sent == []


def test_a_failing_handler_goes_on_in_a_deliver_task_later_holding_the_flag(make_rt, sent):
    rt = inline(make_rt("a"))
    e1 = event("1", 1001)
    recorder(rt, "a").failing[e1.id] = RuntimeError("down")
    dispatch(rt, [e1])
    [(task, args, countdown)] = sent
    assert (task, args) == (DELIVER_TASK, (DeliveryQueue.of("a", e1).name,)) and 0.5 <= countdown <= 1.0
    assert rt.store.flags.is_claimed(DeliveryQueue.of("a", e1).name)
    assert queued(rt, "a", e1) == [e1.id]


def test_queues_past_the_time_budget_go_to_deliver_tasks(make_rt, sent):
    rt = inline(make_rt("a"), seconds=1e-9)
    e1, other = event("1", 1001), event("other", 1002, customer="c2")
    dispatch(rt, [e1, other])
    assert recorder(rt, "a").calls == []
    assert sent == [(DELIVER_TASK, (DeliveryQueue.of("a", e).name,), 0.0) for e in (e1, other)]


def test_a_task_handed_out_again_takes_back_the_flags_it_held_and_only_those(make_rt, sent):
    from workers.scheduler import TASK_ID

    rt = inline(make_rt("a"))
    e1, other = event("1", 1001), event("other", 1002, customer="c2")
    mine, theirs = DeliveryQueue.of("a", e1), DeliveryQueue.of("a", other)
    rt.store.flags.claim_many([mine.name], ttl=60, owner="task-1")  # then its worker was killed
    rt.store.flags.claim(theirs.name, ttl=60)                      # a deliver task is on this one
    token = TASK_ID.set("task-1")
    try:
        dispatch(rt, [e1, other])  # the same task, run again
    finally:
        TASK_ID.reset(token)
    assert recorder(rt, "a").handled == [e1.id]
    assert queued(rt, "a", other) == [other.id]


def test_a_queue_handed_to_a_deliver_task_cannot_be_taken_back_by_the_task_that_handed_it(make_rt, sent):
    from workers.scheduler import TASK_ID

    rt = inline(make_rt("a"), seconds=1e-9)  # the budget runs out: the queue goes to a deliver task
    e1, e2 = event("1", 1001), event("2", 1002)
    token = TASK_ID.set("hydrate-task-1")
    try:
        dispatch(rt, [e1])
        dispatch(rt, [e2])  # the same task id, retried (waiting for call budget) while it drains
    finally:
        TASK_ID.reset(token)
    assert [args for _, args, _ in sent] == [(DeliveryQueue.of("a", e1).name,)], "one drainer only"
    assert recorder(rt, "a").calls == []
