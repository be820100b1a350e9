"""Hydration within Meta's limits, end to end on a real worker: the shared budget, coalescing,
throttling, transient errors, invalid tokens, appsecret_proof."""

import time
from concurrent.futures import ThreadPoolExecutor

from tests.harness import GraphBackedRelay, message_body, redis_url, wait_for
from workers.playground.graph_world import GraphWorld
from workers.state import Store

FAST = {"hydration": {"coalesce_seconds": 0.3, "throttle_seconds": 1.0, "paused_recheck_seconds": 0.5}}


def _world(pages, **kwargs) -> GraphWorld:
    world = GraphWorld(**kwargs)
    for page in pages:
        world.add_account(page, f"token-{page}")
    return world


def _accounts(pages) -> list[dict]:
    return [{"page_id": p, "access_token": f"token-{p}"} for p in pages]


def _seed(world, page, users, per_user) -> list[tuple[str, str, str]]:
    """Messages in the world, oldest first; returns (page, user, mid) for each."""
    sent = []
    for user in users:
        for n in range(per_user):
            mid = f"m_{page}_{user}_{n}"
            world.add_message(page, "messenger", user, mid, text=f"text {n}")
            sent.append((page, user, mid))
    return sent


def _post_all(relay, sent) -> None:
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda s: relay.post(message_body(*s))[0], sent))
    assert statuses == [200] * len(sent)


def _complete(relay, sent, timeout=40) -> dict:
    mids = {mid for _, _, mid in sent}

    def done():
        records = {r["mid"]: r for r in relay.events() if r["mid"] in mids}
        return records if len(records) == len(mids) else None
    records = wait_for(done, timeout=timeout, message=f"{len(mids)} hydrated messages")
    assert {r["hydration"] for r in records.values()} == {"complete"}
    return records


def test_a_burst_in_one_conversation_costs_one_or_two_calls():
    world = _world(["P1"])
    sent = _seed(world, "P1", ["U1"], 10)
    with GraphBackedRelay(world, _accounts(["P1"]), extra=FAST) as relay:
        _post_all(relay, sent)
        records = _complete(relay, sent)
    assert len({r["conversation_id"] for r in records.values()}) == 1
    assert world.count(page_id="P1") <= 2, world.calls
    assert world.throttled() == 0


def test_many_conversations_on_two_accounts_are_never_throttled():
    world = _world(["P1", "P2"])
    sent = (_seed(world, "P1", [f"U{n}" for n in range(6)], 2)
            + _seed(world, "P2", [f"V{n}" for n in range(6)], 2))
    with GraphBackedRelay(world, _accounts(["P1", "P2"]), extra=FAST, broker_url=redis_url(6)) as relay:
        _post_all(relay, sent)
        _complete(relay, sent, timeout=60)
    assert world.throttled() == 0
    assert world.count() <= 12 * 2


def test_throttled_answers_back_off_and_every_message_arrives():
    world = _world(["P1"], calls_per_second=0.5)  # Meta stricter than the configured budget
    sent = _seed(world, "P1", [f"U{n}" for n in range(4)], 1)
    slow_retry = {"hydration": {**FAST["hydration"], "throttle_seconds": 2.5}}
    with GraphBackedRelay(world, _accounts(["P1"]), extra=slow_retry) as relay:
        for message in sent:  # one after the other: each needs its own call
            _post_all(relay, [message])
            _complete(relay, [message], timeout=60)
    assert world.throttled() >= 1
    assert world.throttled() < world.count() / 2, "no backing off after throttled answers"


def test_several_conversations_are_hydrated_by_one_listing_call():
    world = _world(["P1"])
    sent = _seed(world, "P1", [f"U{n}" for n in range(6)], 2)
    with GraphBackedRelay(world, _accounts(["P1"]), extra=FAST) as relay:
        _post_all(relay, sent)
        records = _complete(relay, sent)
    assert len({r["conversation_id"] for r in records.values()}) == 6
    assert world.count(page_id="P1") <= 2, [c["path"] for c in world.calls]


def test_transient_500s_are_retried():
    world = _world(["P1"], transient_rate=0.2, seed=3)
    sent = _seed(world, "P1", [f"U{n}" for n in range(8)], 1)
    with GraphBackedRelay(world, _accounts(["P1"]), extra=FAST) as relay:
        for message in sent:  # one after the other, so that there are many calls
            _post_all(relay, [message])
            _complete(relay, [message], timeout=60)
    assert world.count(status=500) >= 1


def test_invalid_token_pauses_that_account_only_until_replaced():
    world = _world(["P1", "P2"])
    world.revoked.add("token-P1")
    bad = _seed(world, "P1", ["U1"], 2)
    good = _seed(world, "P2", ["V1"], 2)
    system = GraphBackedRelay(world, _accounts(["P1", "P2"]), extra=FAST)
    with system as relay:
        _post_all(relay, bad + good)
        _complete(relay, good)
        store = relay.open_store()
        wait_for(lambda: store.accounts.paused("P1"), message="P1 paused")
        assert store.accounts.paused("P2") is None
        assert not [r for r in relay.events() if r["account_id"] == "P1"], "paused events must wait"
        world.add_account("P1", "token-P1-new")
        time.sleep(0.01)  # a distinct mtime for the rewritten file, which the worker reloads
        system.write_config(relay.dir, [{"page_id": "P1", "access_token": "token-P1-new"},
                                        {"page_id": "P2", "access_token": "token-P2"}])
        _complete(relay, bad, timeout=30)
        assert store.accounts.paused("P1") is None


def test_a_listing_the_api_refuses_falls_back_to_one_call_per_conversation():
    world = _world(["P1"])
    world.refuse_listing = True  # "Please reduce the amount of data you're asking for" (code 1)
    sent = _seed(world, "P1", [f"U{n}" for n in range(3)], 2)
    with GraphBackedRelay(world, _accounts(["P1"]), extra=FAST) as relay:
        _post_all(relay, sent)
        _complete(relay, sent)
    assert world.count(code=1) == 1 and world.count(status=200) == 3


def test_messages_listed_without_details_are_fetched_by_id():
    world = _world(["P1"])
    world.nested_details = False
    sent = _seed(world, "P1", ["U1"], 3)
    with GraphBackedRelay(world, _accounts(["P1"]), extra=FAST) as relay:
        _post_all(relay, sent)
        records = _complete(relay, sent)
    assert {r["message"]["message"] for r in records.values()} == {"text 0", "text 1", "text 2"}
    assert world.count(page_id="P1") <= 1 + 3 + 1


def test_small_pages_are_followed_by_cursor_within_the_20_newest():
    world = _world(["P1"])
    world.max_page = 4  # the API pages nested messages 4 at a time
    sent = _seed(world, "P1", ["U1"], 24)
    wanted = [sent[5], sent[23]]  # the 19th newest (third page onward) and the newest
    beyond = sent[2]              # the 22nd newest: no details
    with GraphBackedRelay(world, _accounts(["P1"]), extra=FAST) as relay:
        _post_all(relay, [*wanted, beyond])
        records = wait_for(lambda: {r["mid"]: r for r in relay.events()} if len(relay.events()) == 3
                           else None, timeout=40, message="three records")
    assert records[sent[5][2]]["hydration"] == "complete" and records[sent[23][2]]["hydration"] == "complete"
    assert records[beyond[2]]["hydration"] == "unavailable"
    paths = [c["path"] for c in world.calls]
    assert any(p.endswith("/messages") for p in paths), paths
    assert world.throttled() == 0


def test_appsecret_proof_is_sent_when_configured():
    world = _world(["P1"], app_secret="test-app-secret")
    sent = _seed(world, "P1", ["U1"], 1)
    extra = {**FAST, "meta": {"appsecret_proof": True}}
    with GraphBackedRelay(world, _accounts(["P1"]), extra=extra) as relay:
        _post_all(relay, sent)
        _complete(relay, sent)
    assert world.count(code=100) == 0


def test_budget_is_shared_and_spaced():
    store = Store(redis_url(7))
    assert store.budgets.take_call("A", 2.0) == 0
    wait = store.budgets.take_call("A", 2.0)
    assert 0.4 < wait <= 0.6
    assert store.budgets.take_call("B", 2.0) == 0, "accounts have separate budgets"
    store.budgets.block_calls("B", 5)
    assert store.budgets.take_call("B", 2.0) > 4
