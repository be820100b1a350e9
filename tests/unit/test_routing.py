"""Routing in-process: which queue a freshly parsed event lands in, and which drain task starts.

The store is a prefixed namespace of the machine's Redis; Celery is replaced by a recorder of the
tasks the scheduler sends (name, args, countdown). No worker runs: these are the stage's functions.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.harness import SentTasks, in_process_runtime
from workers.delivery.plugins import LoadedHandler
from workers.hydration.pending import Pending
from workers.ingest.parse import parse_envelope
from workers.ingest.route import route
from workers.records import DeliveryQueue, Event, HydrationQueue
from workers.runtime.config import settings_from_dict
from workers.scheduler import DELIVER_TASK, HYDRATE_TASK, Scheduler, drained_by
from workers.settings import HandlerConfig
from workers.stage import Runtime
from workers.state import Store

PAGE, UNCONFIGURED = "P1", "P9"
COALESCE = 0.25


class Sink:
    """A handler routing never calls: routing only queues."""

    def __init__(self, name: str):
        self.name = name

    def handle(self, event: Event) -> None:
        raise AssertionError("routing must not call handlers")


def handler(name: str, **options: Any) -> LoadedHandler:
    return LoadedHandler(Sink(name), HandlerConfig(type="test", name=name, **options))


def runtime(store: Store, sent: SentTasks, *handlers: LoadedHandler) -> Runtime:
    settings = settings_from_dict({
        "meta": {"app_secrets": ["s"], "verify_token": "t"},
        "accounts": [{"page_id": PAGE, "access_token": "token"}],
        "hydration": {"coalesce_seconds": COALESCE}}, env={})
    return in_process_runtime(store, settings, sent, handlers={h.name: h for h in handlers})


def webhook(n: int, kind: str = "message", *, account: str = PAGE, customer: str = "c1",
            **message: object) -> Event:
    """The one event a webhook delivery of `kind` from `customer` to `account` parses into."""
    item: dict = {"sender": {"id": customer}, "recipient": {"id": account},
                  "timestamp": 1700000000000 + n}
    if kind == "message":
        item["message"] = {"mid": f"m_{n}", "text": f"text {n}", **message}
    elif kind == "reaction":
        item["reaction"] = {"mid": f"m_{n}", "action": "react", "reaction": "love"}
    else:
        item[kind] = {"watermark": 1700000000000 + n}
    [event] = parse_envelope({"object": "page", "entry": [{"id": account, "time": 1, "messaging": [item]}]})
    assert event.kind == kind
    return event


def news_about(n: int, of: int, body: dict) -> Event:
    """The event of a delivery `n` that is about the message of webhook(`of`): an edit or an unsend."""
    item: dict = {"sender": {"id": "c1"}, "recipient": {"id": PAGE}, "timestamp": 1700000000000 + n}
    key, value = next(iter(body.items()))
    item[key] = {"mid": f"m_{of}", **value}
    [event] = parse_envelope({"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [item]}]})
    return event


@pytest.fixture
def sent():
    return SentTasks()


@pytest.fixture
def rt(store, sent):
    """Handlers 'a' and 'b', both taking every kind."""
    return runtime(store, sent, handler("a"), handler("b"))


def queued_ids(store: Store, queue) -> list[str]:
    return [item.get("id") or item["event"]["id"] for item in store.queues.peek(queue.name)]


def test_a_message_waits_in_its_accounts_hydration_queue(rt, store, sent):
    message = webhook(1)
    assert message.hydration == "pending"
    before = time.time()
    route(rt, [message])
    queue = HydrationQueue(PAGE)
    [item] = store.queues.peek(queue.name)
    pending = Pending.from_dict(item)
    assert (pending.event, pending.step) == (message, "new")
    assert before <= pending.since <= time.time(), "the give-up clock starts at receipt"
    assert sent == [(HYDRATE_TASK, (queue.name,), 0.0)], "an idle account is called at once"
    assert store.queues.length(DeliveryQueue.of("a", message).name) == 0


def test_messages_gather_while_the_budget_is_spent(rt, store, sent):
    store.budgets.take_call(PAGE, 2.0)  # a call was just made
    route(rt, [webhook(1)])
    assert sent == [(HYDRATE_TASK, (HydrationQueue(PAGE).name,), COALESCE)]


def test_messages_gather_while_another_of_the_account_waits(rt, store, sent):
    route(rt, [webhook(1)])
    store.flags.release(HydrationQueue(PAGE).name)  # as if its task were gone: only the queue is left
    route(rt, [webhook(2)])
    assert [countdown for *_, countdown in sent] == [0.0, COALESCE]


def test_the_messages_of_one_delivery_are_called_for_at_once_together(rt, store, sent):
    route(rt, [webhook(1), webhook(2)])
    assert sent == [(HYDRATE_TASK, (HydrationQueue(PAGE).name,), 0.0)]


def test_a_non_message_event_goes_straight_to_every_accepting_handler(rt, store, sent):
    read, reaction = webhook(1, "read"), webhook(2, "reaction")
    route(rt, [read, reaction])
    for name in ("a", "b"):
        queue = DeliveryQueue.of(name, read)
        assert queue == DeliveryQueue.of(name, reaction)  # one conversation
        assert store.queues.peek(queue.name) == [read.to_dict(), reaction.to_dict()]
    assert sorted(sent) == [(DELIVER_TASK, (DeliveryQueue.of(name, read).name,), 0.0)
                            for name in ("a", "b")]  # one task per queue, not per event
    assert store.queues.length(HydrationQueue(PAGE).name) == 0


def test_a_message_that_cannot_be_hydrated_is_delivered_at_once_unavailable(rt, store, sent):
    message, reason = webhook(1, account=UNCONFIGURED), "no [[accounts]] entry for this account id"
    route(rt, [message])
    queue = DeliveryQueue.of("a", message)
    [record] = store.queues.peek(queue.name)
    assert record["id"] == message.id
    assert (record["hydration"], record["hydration_error"]) == ("unavailable", reason)
    assert record["message"]["id"] == message.mid and record["message"]["message"] == "text 1"
    assert store.queues.length(HydrationQueue(message.account_id).name) == 0
    assert (DELIVER_TASK, (queue.name,), 0.0) in sent
    assert all(name == DELIVER_TASK for name, _, _ in sent)


def test_an_unsend_goes_straight_to_the_handlers_with_nothing_to_read(rt, store, sent):
    unsend = news_about(2, of=1, body={"message": {"is_deleted": True}})
    route(rt, [unsend])
    [record] = store.queues.peek(DeliveryQueue.of("a", unsend).name)
    assert (record["kind"], record["hydration"], record["mid"]) == ("message_delete", "not_applicable", "m_1")
    assert store.queues.length(HydrationQueue(PAGE).name) == 0
    assert all(name == DELIVER_TASK for name, _, _ in sent)


def test_an_unsend_of_a_message_still_waiting_for_hydration_reaches_handlers_after_it(rt, store, sent):
    message = webhook(1)
    route(rt, [message])
    assert queued_ids(store, HydrationQueue(PAGE)) == [message.id]
    unsend = news_about(2, of=1, body={"message": {"is_deleted": True}})
    route(rt, [unsend])
    assert store.queues.length(HydrationQueue(PAGE).name) == 0, "no call for a message unsent"
    records = store.queues.peek(DeliveryQueue.of("a", unsend).name)
    assert [(r["kind"], r["mid"]) for r in records] == [("message", "m_1"), ("message_delete", "m_1")]
    assert records[0]["hydration"] == "unavailable" and "unsent" in records[0]["hydration_error"]


def test_an_edit_of_a_message_a_sync_brought_is_hydrated_not_left_out(rt, store, sent):
    store.sightings.claim(PAGE, "m_1", "evt_synced_m_1", "sync")
    edit = news_about(2, of=1, body={"message_edit": {"num_edit": 1}})
    assert route(rt, [edit]) == {"to hydration": 1}
    assert queued_ids(store, HydrationQueue(PAGE)) == [edit.id]
    assert route(rt, [webhook(1)]) == {"already brought by a sync or sweep": 1}, "the message itself is"


def test_an_edit_claims_no_message_so_a_later_sync_still_brings_the_message(rt, store, sent):
    route(rt, [news_about(2, of=1, body={"message_edit": {"num_edit": 1}})])
    assert not store.sightings.seen(PAGE, "m_1")


def test_a_repeated_delivery_every_handler_has_causes_no_work(rt, store, sent):
    message, read = webhook(1), webhook(2, "read")
    for name in ("a", "b"):
        for event in (message, read):
            store.progress.mark_done(name, event.id)
    route(rt, [message, read])
    assert store.queues.length(HydrationQueue(PAGE).name) == 0
    assert store.queues.length(DeliveryQueue.of("a", read).name) == 0
    assert store.queues.length(DeliveryQueue.of("b", read).name) == 0
    assert sent == []


def test_a_message_only_some_handlers_have_is_still_hydrated(rt, store, sent):
    message = webhook(1)
    store.progress.mark_done("a", message.id)
    route(rt, [message])
    assert queued_ids(store, HydrationQueue(PAGE)) == [message.id]
    assert [name for name, _, _ in sent] == [HYDRATE_TASK]


def test_force_forgets_done_marks_so_a_replay_reaches_the_handlers_again(rt, store, sent):
    message, read = webhook(1), webhook(2, "read")
    for name in ("a", "b"):
        for event in (message, read):
            store.progress.mark_done(name, event.id)
    route(rt, [message, read], force=True)
    assert not any(store.progress.is_done(name, event.id)
                   for name in ("a", "b") for event in (message, read))
    assert queued_ids(store, HydrationQueue(PAGE)) == [message.id]
    assert queued_ids(store, DeliveryQueue.of("a", read)) == [read.id]
    assert queued_ids(store, DeliveryQueue.of("b", read)) == [read.id]
    assert sorted(name for name, _, _ in sent) == [DELIVER_TASK, DELIVER_TASK, HYDRATE_TASK]


def test_a_handler_whose_kinds_exclude_the_event_gets_nothing(store, sent):
    rt = runtime(store, sent, handler("all"), handler("messages_only", kinds=["message"]))
    reaction = webhook(1, "reaction")
    route(rt, [reaction])
    assert queued_ids(store, DeliveryQueue.of("all", reaction)) == [reaction.id]
    assert store.queues.length(DeliveryQueue.of("messages_only", reaction).name) == 0
    assert sent == [(DELIVER_TASK, (DeliveryQueue.of("all", reaction).name,), 0.0)]


def test_a_repeated_message_counts_only_the_handlers_that_accept_it(store, sent):
    rt = runtime(store, sent, handler("all"), handler("reads_only", kinds=["read"]))
    message = webhook(1)
    store.progress.mark_done("all", message.id)  # 'reads_only' will never have it: not missing
    route(rt, [message])
    assert store.queues.length(HydrationQueue(PAGE).name) == 0
    assert sent == []


def test_no_second_drain_task_starts_while_a_queues_flag_is_held(rt, store, sent):
    route(rt, [webhook(1, customer="c1"), webhook(2, "read", customer="c1")])
    route(rt, [webhook(3, customer="c2"), webhook(4, "read", customer="c1")])
    hydration, delivery_a = HydrationQueue(PAGE), DeliveryQueue("a", f"{PAGE}:c1")
    assert store.queues.length(hydration.name) == 2 and store.queues.length(delivery_a.name) == 2
    assert sorted(name for name, _, _ in sent) == [DELIVER_TASK, DELIVER_TASK, HYDRATE_TASK]
    rt.scheduler.hold(hydration, countdown=5)  # a hydrate task retrying later keeps its flag
    route(rt, [webhook(5, customer="c3")])
    assert len(sent) == 3 and store.queues.length(hydration.name) == 3


def test_a_finished_drain_task_hands_over_to_a_new_one_if_items_wait(rt, store, sent):
    route(rt, [webhook(1), webhook(2, "read")])
    hydration, delivery_a = HydrationQueue(PAGE), DeliveryQueue("a", f"{PAGE}:c1")
    sent.clear()
    rt.scheduler.finish(hydration)
    assert sent == [(HYDRATE_TASK, (hydration.name,), COALESCE)]
    store.queues.dequeue(delivery_a.name, webhook(2, "read").id)
    rt.scheduler.finish(delivery_a)
    assert len(sent) == 1 and not store.flags.is_claimed(delivery_a.name)


def test_queues_whose_task_was_lost_are_started_again_but_not_a_failed_one(store, sent):
    """restart_orphans (the relay every few seconds, the sweep every minute): a queue with items and
    no flag lost its task; one whose task failed on a bug stays quiet; another handler's waits."""
    scheduler = Scheduler(store.flags, store.queues, sent, visibility_timeout=60, coalesce_seconds=0)
    lost, failed, running = DeliveryQueue("a", "t1"), DeliveryQueue("a", "t2"), HydrationQueue(PAGE)
    elsewhere = DeliveryQueue("other", "t1")
    for queue in (lost, failed, running, elsewhere):
        store.queues.enqueue(queue.name, "item", {"id": "item"}, score=1)
    scheduler.schedule(running)
    scheduler.failed(failed)
    sent.clear()
    assert scheduler.restart_orphans(drained_by({"a"})) == 1
    assert sent == [(DELIVER_TASK, (lost.name,), 0.0)]
    assert store.flags.is_claimed(lost.name) and not store.flags.is_claimed(failed.name)
    assert scheduler.restart_orphans(drained_by({"a"})) == 0  # its new task holds the flag now
    scheduler.schedule(failed)  # a new item still starts the failed queue, as before
    assert sent[-1] == (DELIVER_TASK, (failed.name,), 0.0)
