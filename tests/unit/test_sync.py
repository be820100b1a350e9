"""Sync and the gap sweep in-process, against the Graph stand-in over HTTP and the machine's Redis."""

from __future__ import annotations

import math
import time

import pytest

from tests.harness import in_process_runtime
from workers.graph import GraphClient
from workers.hydration.pending import Pending
from workers.ingest.parse import parse_envelope
from workers.ingest.route import route
from workers.playground.graph_world import GraphWorld
from workers.records import HydrationQueue
from workers.runtime.config import settings_from_dict
from workers.stage import Runtime
from workers.sync.run import advance, run_to_end, start_or_resume
from workers.sync.step import LIVE_FIRST_WAIT

PAGE, TOKEN, IG = "P1", "token-p1", "IG1"
HOUR = 3600.0


def build_world(world: GraphWorld, conversations: int, messages: int, *, start: float) -> None:
    """`conversations` conversations of `messages` messages each, one a second, oldest first."""
    for c in range(conversations):
        for m in range(messages):
            created = start + c * messages + m
            sender = PAGE if m % 5 == 4 else f"U{c}"  # every fifth message is the page's reply
            world.add_message(PAGE, "messenger", f"U{c}", f"m_{c}_{m}", text=f"t{c}.{m}",
                              from_id=sender, created=created)


@pytest.fixture
def rt(world, tmp_path, store):
    settings = settings_from_dict({
        "meta": {"app_secrets": ["s"], "verify_token": "t", "graph_url": world.url},
        "accounts": [{"page_id": PAGE, "instagram_id": IG, "access_token": TOKEN,
                      "calls_per_second": 1000}],
        "hydration": {"throttle_seconds": 0.2, "coalesce_seconds": 0},
        "handlers": [{"type": "jsonl", "path": str(tmp_path / "events.jsonl")}]}, env={})
    return in_process_runtime(store, settings, lambda name, args, countdown: None,
                              graph=GraphClient(world.url, "v27.0"))


def delivered(rt: Runtime) -> list[dict]:
    """Every event waiting for the handler, over all its queues."""
    return [item for name in rt.store.queues.names() if name.startswith("d|")
            for item in rt.store.queues.peek(name)]


def test_sync_reads_every_message_in_few_calls(rt, world):
    build_world(world, 60, 30, start=time.time() - 10 * HOUR)
    job = run_to_end(rt, start_or_resume(rt, PAGE, platform="messenger"))
    events = delivered(rt)
    assert len(events) == 1800 == len({e["id"] for e in events}) == job.messages == job.new_messages
    assert job.calls == len(world.calls) == math.ceil(60 / 25) + 60  # listings + one older page each
    hydrated = [e for e in events if e["hydration"] == "complete"]
    assert len(hydrated) == 60 * 20 and all(e["message"]["message"] for e in hydrated)
    older = [e for e in events if e["hydration"] == "unavailable"]
    assert {e["mid"].split("_")[2] for e in older} == {str(m) for m in range(10)}
    assert all(e["source"] == "sync" and e["conversation_id"] for e in events)
    assert {e["kind"] for e in events} == {"message", "echo"}


def test_a_second_run_reads_only_what_changed_and_sends_nothing_new(rt, world):
    build_world(world, 5, 25, start=time.time() - HOUR)
    first = run_to_end(rt, start_or_resume(rt, PAGE, platform="messenger"))
    before = sorted(e["id"] for e in delivered(rt))
    again = run_to_end(rt, start_or_resume(rt, PAGE, platform="messenger"))
    assert again.new_messages == 0 and sorted(e["id"] for e in delivered(rt)) == before
    assert (again.updates_since, again.calls, again.conversations) == (first.started_at - 60, 1, 0)
    full = run_to_end(rt, start_or_resume(rt, PAGE, platform="messenger", full=True))
    assert (full.updates_since, full.calls, full.new_messages) == (None, first.calls, 0)
    assert full.expected == first.conversations == 5  # the progress bar's total


def test_a_re_run_reads_the_conversations_updated_since_the_last_sync(rt, world):
    build_world(world, 5, 3, start=time.time() - HOUR)
    run_to_end(rt, start_or_resume(rt, PAGE, platform="messenger"))
    world.add_message(PAGE, "messenger", "U1", "m_late", text="late", created=time.time())
    again = run_to_end(rt, start_or_resume(rt, PAGE, platform="messenger"))
    assert (again.conversations, again.new_messages) == (1, 1)
    assert [e["mid"] for e in delivered(rt)].count("m_late") == 1


def test_a_dry_run_gives_the_next_sync_its_total(rt, world):
    from workers.sync.estimate import estimate

    build_world(world, 7, 2, start=time.time() - HOUR)
    assert estimate(rt, PAGE, platform="messenger", since=None)["conversations"] == 7
    assert start_or_resume(rt, PAGE, platform="messenger").expected == 7
    assert start_or_resume(rt, PAGE, platform="all").expected is None, "another scope: not counted"


def test_an_interrupted_sync_goes_on_where_it_stopped(rt, world):
    build_world(world, 60, 22, start=time.time() - HOUR)
    job = start_or_resume(rt, PAGE, platform="messenger")
    while job.conversations < 30:
        advance(rt, job)
    interrupted_calls = job.calls
    resumed = run_to_end(rt, start_or_resume(rt, PAGE, platform="messenger"))  # from the checkpoint
    assert resumed.calls > interrupted_calls and resumed.conversations == 60
    assert len(delivered(rt)) == 60 * 22 == resumed.messages
    assert len(world.calls) == resumed.calls, "no call was made twice"


def test_since_stops_at_conversations_not_updated_since(rt, world):
    build_world(world, 10, 3, start=time.time() - 100)
    job = run_to_end(rt, start_or_resume(rt, PAGE, platform="messenger", since=time.time() - 100 + 15))
    assert job.conversations == 5  # conversations 5..9 had messages after that time


def test_a_message_that_came_brought_before_reaches_the_handler_once(rt, world):
    build_world(world, 1, 3, start=time.time() - 60)
    webhook = {"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [
        {"sender": {"id": "U0"}, "recipient": {"id": PAGE}, "timestamp": int(time.time() * 1000),
         "message": {"mid": "m_0_1", "text": "t0.1"}}]}]}
    route(rt, parse_envelope(webhook))  # live first: waits in hydration
    job = run_to_end(rt, start_or_resume(rt, PAGE, platform="messenger"), sleep=lambda s: _drain_live(rt))
    assert sorted(e["mid"] for e in delivered(rt)) == ["m_0_0", "m_0_2"], "the sync skipped m_0_1"
    assert (job.new_messages, job.brought_before) == (2, 1)
    later = {"object": "page", "entry": [{"id": PAGE, "time": 2, "messaging": [
        {"sender": {"id": "U0"}, "recipient": {"id": PAGE}, "timestamp": int(time.time() * 1000),
         "message": {"mid": "m_0_2", "text": "t0.2"}}]}]}
    route(rt, parse_envelope(later))  # its webhook comes after the sync brought it
    assert rt.store.queues.length(HydrationQueue(PAGE).name) == 0
    assert [e["mid"] for e in delivered(rt)].count("m_0_2") == 1


def _drain_live(rt: Runtime) -> None:
    rt.store.queues.dequeue(HydrationQueue(PAGE).name, *[
        Pending.from_dict(i).event.id for i in rt.store.queues.peek(HydrationQueue(PAGE).name)])


def test_live_messages_go_first(rt, world):
    build_world(world, 2, 3, start=time.time() - 60)
    job = start_or_resume(rt, PAGE, platform="messenger")
    live = parse_envelope({"object": "page", "entry": [{"id": PAGE, "messaging": [
        {"sender": {"id": "U9"}, "recipient": {"id": PAGE}, "timestamp": int(time.time() * 1000),
         "message": {"mid": "m_live", "text": "now"}}]}]})
    route(rt, live)
    assert advance(rt, job) == LIVE_FIRST_WAIT and world.calls == [], "the sync yields its slot"
    _drain_live(rt)
    advance(rt, job)
    assert len(world.calls) == 1


def test_throttled_answers_pause_the_sync_which_then_finishes(rt, world):
    world.calls_per_second = 2  # the stand-in allows less than the account is configured for
    build_world(world, 3, 2, start=time.time() - 60)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    job = run_to_end(rt, start_or_resume(rt, PAGE, platform="messenger"), sleep=sleep)
    assert len(delivered(rt)) == 6 and job.done
    assert world.throttled() == 0 or rt.settings.hydration.throttle_seconds in waits


def test_the_gap_sweep_finds_a_message_no_webhook_brought(rt, world):
    start = time.time() - 600
    build_world(world, 2, 3, start=start)
    for mid in ("m_0_0", "m_0_1", "m_0_2", "m_1_0", "m_1_2"):  # m_1_1's webhook never came
        rt.store.sightings.claim(PAGE, mid, f"evt_webhook_{mid}", "webhook")
    job = run_to_end(rt, start_or_resume(rt, PAGE, platform="messenger", since=start - 1, mode="sweep"))
    [found] = delivered(rt)
    assert (found["mid"], found["source"], job.new_messages) == ("m_1_1", "sweep", 1)


def test_due_sweeps_run_as_tasks_and_count_what_they_find(rt, world):
    from workers.sync import background

    start = time.time() - 900
    build_world(world, 1, 2, start=start)
    rt.store.sightings.claim(PAGE, "m_0_0", "evt_webhook_m_0_0", "webhook")
    sent: list[tuple] = []
    rt.scheduler.send_task = lambda name, args, countdown: sent.append((name, args))
    rt.store.sync_jobs.mark_swept(PAGE, "all", start - 1)  # swept long ago: a sweep is due
    background.start_due_sweeps(rt)
    assert sent == [("inbox_relay.sync", (PAGE, "sweep"))]
    background.start_due_sweeps(rt)
    assert len(sent) == 1, "one sweep task at a time per account"
    while (wait := background.continue_for(rt, PAGE, "sweep", seconds=5)) is not None:
        time.sleep(wait)
    assert [e["mid"] for e in delivered(rt)] == ["m_0_1"] and rt.store.sync_jobs.found(PAGE) == 1
    assert rt.store.sync_jobs.swept_until(PAGE, "all") > start
