"""Handlers isolated in time, end to end: `inbox-relay run` (2 worker processes) with an `http`
handler whose endpoint accepts connections and never answers, beside a `jsonl` handler."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.e2e.test_handlers_e2e import PAGE, TOKEN, _envelope, _events, _ids, _item, _now_ms, _user
from tests.e2e.test_handlers_e2e import _cli as cli
from tests.harness import GraphBackedRelay, wait_for
from tests.unit.test_http_deadline import Silent
from workers.playground.graph_world import GraphWorld

HUNG = {"type": "http", "name": "hung", "timeout": 1, "pause_after": 3, "pause_for": 2,
        "max_age": 8, "kinds": ["read"]}


@pytest.fixture(scope="module")
def hung_endpoint():
    server = Silent()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def system(hung_endpoint):
    world = GraphWorld()
    world.add_account(PAGE, TOKEN)
    handlers = [{"type": "jsonl", "name": "jsonl", "path": "var/events.jsonl"},
                {**HUNG, "url": hung_endpoint.url}]
    with GraphBackedRelay(world, [{"page_id": PAGE, "access_token": TOKEN}], handlers=handlers) as relay:
        relay.store = relay.open_store()
        yield relay


def post_reads(system, count: int) -> list[str]:
    """`count` deliveries of one read event each, from as many conversations; their event ids."""
    ids = []
    for _ in range(count):
        body = _envelope(_item(_user("iso"), _now_ms(), read={"watermark": _now_ms()}))
        assert system.post(body)[0] == 200
        ids += [event.id for event in _events(body)]
    return ids


def seconds_until_all_at_jsonl(system, ids: list[str], *, bound: float) -> float:
    started = time.monotonic()
    wait_for(lambda: set(ids) <= set(_ids(system.events(), ids)), timeout=bound,
             message=f"jsonl to get all {len(ids)} events within {bound}s while http hangs")
    return time.monotonic() - started


def test_a_hung_http_handler_delays_neither_jsonl_nor_ingest_and_is_paused(system, hung_endpoint):
    ids = post_reads(system, 40)
    # The first hung call (1 s) may hold up the one task that made it; nothing else waits on it.
    seconds_until_all_at_jsonl(system, ids, bound=4.0)
    assert hung_endpoint.accepted >= 1, "the http handler was never called: the test proves nothing"

    def paused():
        report = json.loads(cli(system, "status", "--json"))
        [handler] = [h for h in report["handlers"] if h["name"] == "hung"]
        return handler if handler["paused"] else None
    handler = wait_for(paused, timeout=20, message="the hung handler to be paused")
    assert handler["concurrency"] == 1 and handler["in_flight"] <= 1
    assert "handler hung: PAUSED" in cli(system, "status")

    # While paused, other handlers go on at their normal pace.
    more = post_reads(system, 20)
    assert seconds_until_all_at_jsonl(system, more, bound=2.0) < 2.0

    # Failing for longer than max_age (8 s), the waiting events are dead-lettered without calls.
    every = set(ids + more)
    wait_for(lambda: every <= {d.event_id for d in system.store.dead_letters.all() if d.handler == "hung"},
             timeout=45, message="every event of the hung handler dead-lettered")
    assert hung_endpoint.accepted <= 8, f"{hung_endpoint.accepted} calls: the paused handler was called"
    assert set(_ids(system.events(), every)) == every and len(_ids(system.events(), every)) == len(every)

    log = system.log.read_text()
    pauses = re.findall(r"handler=hung paused for \d+s \(pause (\d+) in a row\)", log)
    assert pauses and len(pauses) == len(set(pauses)), f"not one line per pause: {pauses}"
    assert "hello" not in log and "whsec_" not in log
