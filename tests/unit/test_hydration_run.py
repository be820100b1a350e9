"""One hydration run in-process, on the Graph stand-in and the machine's Redis: the give-up clock."""

from __future__ import annotations

import time

import pytest

from tests.harness import in_process_runtime, wait_for
from workers.graph import GraphClient
from workers.hydration import run as hydration
from workers.hydration.pending import Pending
from workers.ingest.parse import parse_envelope
from workers.ingest.route import route
from workers.records import DeliveryQueue, HydrationQueue
from workers.runtime.config import settings_from_dict

PAGE, TOKEN, USER = "P1", "token-p1", "U1"
DAY_MS = 86_400_000


@pytest.fixture
def world(world):
    world.transient_rate = 1.0  # the API answers only 500s
    return world


@pytest.fixture
def rt(world, tmp_path, store):
    settings = settings_from_dict({
        "meta": {"app_secrets": ["s"], "verify_token": "t", "graph_url": world.url},
        "accounts": [{"page_id": PAGE, "access_token": TOKEN, "calls_per_second": 1000}],
        "hydration": {"max_age": 60, "coalesce_seconds": 0},
        "handlers": [{"type": "jsonl", "path": str(tmp_path / "events.jsonl")}]}, env={})
    sent: list[tuple] = []
    return in_process_runtime(store, settings, lambda name, args, countdown: sent.append(args),
                              graph=GraphClient(world.url, "v27.0"))


def week_old_message(mid: str) -> dict:
    stamp = int(time.time() * 1000) - 7 * DAY_MS  # as a delivery Meta retried, or a replay
    return {"object": "page", "entry": [{"id": PAGE, "time": stamp, "messaging": [
        {"sender": {"id": USER}, "recipient": {"id": PAGE}, "timestamp": stamp,
         "message": {"mid": mid, "text": "hi"}}]}]}


def test_an_old_message_is_not_given_up_at_its_first_transient_error(rt, world):
    queue = HydrationQueue(PAGE)
    route(rt, parse_envelope(week_old_message("m_old")))
    delay, failed = hydration.run(rt, queue, failures=0)
    assert failed and delay is not None and world.count(status=500) == 1
    assert rt.store.queues.length(queue.name) == 1, "it waits for the API to come back"


def test_hydration_gives_up_max_age_after_receipt_and_counts_it(rt, world):
    queue = HydrationQueue(PAGE)
    [event] = parse_envelope(week_old_message("m_given_up"))
    received_long_ago = Pending(event, since=time.time() - 61)
    rt.store.queues.enqueue(queue.name, event.id, received_long_ago.to_dict(), score=0)
    hydration.run(rt, queue, failures=3)
    assert rt.store.queues.length(queue.name) == 0
    [delivered] = [p for p in rt.store.queues.peek(DeliveryQueue.of("jsonl", event).name)]
    assert delivered["hydration"] == "unavailable"
    assert delivered["hydration_error"].startswith("gave up after transient errors")
    assert rt.store.accounts.given_up(PAGE) == 1


def test_messages_wait_out_an_outage_and_arrive_hydrated(rt, world):
    queue = HydrationQueue(PAGE)
    world.add_message(PAGE, "messenger", USER, "m_back", text="details")
    route(rt, parse_envelope(week_old_message("m_back")))
    assert hydration.run(rt, queue, failures=0)[1]
    world.transient_rate = 0.0  # the API is back
    wait_for(lambda: hydration.run(rt, queue, failures=1) == (None, False), timeout=5,
             message="a run that empties the queue")  # budget waits come back as short delays
    [event] = rt.store.queues.peek(DeliveryQueue(handler="jsonl", thread=f"{PAGE}:{USER}").name)
    assert event["hydration"] == "complete" and event["message"]["message"] == "details"
