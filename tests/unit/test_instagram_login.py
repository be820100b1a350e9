"""Instagram Login accounts in-process: the same hydration, sync and budget as a Page account, on
their own host (a second Graph stand-in served over HTTP, so what goes where is told apart), and
tokens kept valid by refreshing them."""

from __future__ import annotations

import time

import pytest

from tests.harness import in_process_runtime, wait_for
from workers.connect import tokens
from workers.graph import GraphClient
from workers.hydration import run as hydration
from workers.ingest.parse import parse_envelope
from workers.ingest.route import route
from workers.playground.graph_server import FakeGraphServer
from workers.playground.graph_world import GraphWorld
from workers.records import DeliveryQueue, HydrationQueue
from workers.runtime.config import settings_from_dict
from workers.stage import Runtime
from workers.state.accounts import fingerprint
from workers.sync.run import run_to_end, start_or_resume

IG, IG_TOKEN, USER = "17841400000000001", "ig-user-token", "IGSID1"
DAY = 86400.0


@pytest.fixture
def instagram():
    """graph.instagram.com's stand-in, with the account's token issued 50 days ago (10 days left)."""
    world = GraphWorld(calls_per_second=1000)
    world.me_only = True
    world.add_account(IG, IG_TOKEN, issued=time.time() - 50 * DAY, expires=time.time() + 10 * DAY)
    with FakeGraphServer(world) as server:
        world.url = server.url
        yield world


@pytest.fixture
def rt(world, instagram, store, tmp_path) -> Runtime:
    settings = settings_from_dict({
        "meta": {"app_secrets": ["s"], "verify_token": "t", "graph_url": world.url,
                 "instagram_graph_url": instagram.url},
        "accounts": [{"login": "instagram", "instagram_id": IG, "access_token": IG_TOKEN,
                      "calls_per_second": 1000}],
        "hydration": {"coalesce_seconds": 0},
        "handlers": [{"type": "jsonl", "path": str(tmp_path / "events.jsonl")}]}, env={})
    return in_process_runtime(store, settings, lambda name, args, countdown: None,
                              graph=GraphClient(world.url, "v27.0"),
                              instagram_graph=GraphClient(instagram.url, "v27.0"))


def _webhook(mid: str, text: str = "hi") -> dict:
    stamp = int(time.time() * 1000)
    return {"object": "instagram", "entry": [{"id": IG, "time": stamp, "messaging": [
        {"sender": {"id": USER}, "recipient": {"id": IG}, "timestamp": stamp,
         "message": {"mid": mid, "text": text}}]}]}


def _delivered(rt: Runtime) -> list[dict]:
    return [item for name in rt.store.queues.names() if name.startswith("d|")
            for item in rt.store.queues.peek(name)]


def _hydrate_all(rt: Runtime) -> None:
    queue = HydrationQueue(IG)
    wait_for(lambda: hydration.run(rt, queue, failures=0) == (None, False), timeout=5,
             message="the hydration queue empty")


def test_a_message_is_hydrated_on_the_instagram_host_only(rt, world, instagram):
    instagram.add_message(IG, "instagram", USER, "m_ig_1", text="details from Instagram")
    route(rt, parse_envelope(_webhook("m_ig_1")))
    _hydrate_all(rt)
    [record] = _delivered(rt)
    assert record["hydration"] == "complete" and record["conversation_id"]
    assert record["message"]["message"] == "details from Instagram"
    assert world.calls == [] and world.setup_calls == [], "a call went to the Facebook host"
    assert [c["path"] for c in instagram.calls] == ["/me/conversations"]


def test_history_syncs_from_me_conversations_with_a_pages_economy(rt, world, instagram):
    for c in range(30):
        for m in range(22):
            instagram.add_message(IG, "instagram", f"U{c}", f"m_{c}_{m}", text=f"t{c}.{m}",
                                  created=time.time() - 3600 + c * 30 + m)
    job = run_to_end(rt, start_or_resume(rt, IG))
    assert job.scope == ["instagram"] and (job.conversations, job.messages) == (30, 660)
    assert job.calls == len(instagram.calls) == 2 + 30  # two listings, one older page each
    assert {c["path"] for c in instagram.calls} <= {"/me/conversations"} | {
        f"/{cid}/messages" for cid in instagram.conversations}
    assert world.calls == []
    assert {e["account_id"] for e in _delivered(rt)} == {IG}


def test_a_token_near_its_expiry_is_refreshed_and_every_call_then_carries_the_new_one(rt, instagram):
    assert tokens.refresh_due(rt) == 1
    fresh = rt.token_for(rt.settings.accounts[0])
    assert fresh != IG_TOKEN and IG_TOKEN in instagram.revoked, "the old token is gone at Meta"
    state = tokens.token_state(rt.store, rt.settings.accounts[0])
    assert state and state["expires_at"] == pytest.approx(time.time() + 60 * DAY, abs=60)
    assert tokens.refresh_due(rt) == 0, "60 days left: not due again"
    instagram.add_message(IG, "instagram", USER, "m_after", text="after the refresh")
    route(rt, parse_envelope(_webhook("m_after")))
    _hydrate_all(rt)
    [record] = _delivered(rt)
    assert record["hydration"] == "complete"
    assert not rt.store.accounts.paused(IG)
    [refresh] = [c for c in instagram.setup_calls if c["path"] == "/refresh_access_token"]
    assert not refresh["token_in_url"]


def test_a_token_under_a_day_old_is_tried_again_later_without_pausing_the_account(rt, instagram):
    young = "ig-young-token"
    instagram.add_account(IG, young, issued=time.time() - 3600)
    account = rt.settings.accounts[0].model_copy(update={"access_token": young})
    assert tokens.refresh(rt, account, now=time.time()) is False
    state = tokens.token_state(rt.store, account)
    assert state and state["error"] and state["next_try"] > time.time() + 60
    assert not tokens.is_due(rt, account, time.time()), "not before its next try"
    assert rt.token_for(account) == young and not rt.store.accounts.paused(IG)


def test_a_new_token_in_the_file_wins_over_a_refreshed_older_one(rt, instagram):
    tokens.refresh_due(rt)
    replaced = rt.settings.accounts[0].model_copy(update={"access_token": "ig-token-from-a-new-login"})
    assert rt.token_for(replaced) == "ig-token-from-a-new-login"
    assert tokens.is_due(rt, replaced, time.time()), "its expiry is not known: refreshed at start"


def test_the_expiry_is_learnt_once_at_start_when_unknown(rt, instagram):
    instagram.expires.pop(IG_TOKEN)  # as for a token from the file: nothing says when it expires
    assert tokens.is_due(rt, rt.settings.accounts[0], time.time())
    assert tokens.refresh_due(rt) == 1


def test_a_page_and_an_instagram_login_account_of_one_instagram_account_deliver_once(
        world, instagram, store, tmp_path):
    settings = settings_from_dict({
        "meta": {"app_secrets": ["s"], "verify_token": "t", "graph_url": world.url,
                 "instagram_graph_url": instagram.url},
        "accounts": [{"page_id": "P1", "instagram_id": IG, "access_token": "token-p1"},
                     {"login": "instagram", "instagram_id": IG, "access_token": IG_TOKEN}],
        "handlers": [{"type": "jsonl", "path": str(tmp_path / "events.jsonl")}]}, env={})
    rt = in_process_runtime(store, settings, lambda name, args, countdown: None,
                            graph=GraphClient(world.url, "v27.0"),
                            instagram_graph=GraphClient(instagram.url, "v27.0"))
    body = {**_webhook("m_twice"), "entry": [{**_webhook("m_twice")["entry"][0], "time": 1}]}
    for _ in range(2):  # once through the Page's app, once through the Instagram Login app
        route(rt, parse_envelope(body))
    queue = DeliveryQueue.of("jsonl", parse_envelope(body)[0])
    pending = rt.store.queues.length(HydrationQueue(IG).name) + rt.store.queues.length(queue.name)
    assert pending == 1, "the second copy is the same event: it is not queued again"


def test_the_gap_sweep_finds_a_message_no_webhook_brought_on_the_instagram_host(rt, world, instagram):
    start = time.time() - 600
    for m in range(3):
        instagram.add_message(IG, "instagram", USER, f"m_sw_{m}", text=f"t{m}", created=start + m)
    for mid in ("m_sw_0", "m_sw_2"):  # m_sw_1's webhook never came
        rt.store.sightings.claim(IG, mid, f"evt_webhook_{mid}", "webhook")
    job = run_to_end(rt, start_or_resume(rt, IG, since=start - 1, mode="sweep"))
    [found] = _delivered(rt)
    assert (found["mid"], found["source"], job.new_messages) == ("m_sw_1", "sweep", 1)
    assert world.calls == [] and {c["path"] for c in instagram.calls} == {"/me/conversations"}


def test_after_a_restart_every_process_keeps_the_refreshed_token(rt, world, instagram, store):
    tokens.refresh_due(rt)
    restarted = in_process_runtime(store, rt.settings, lambda name, args, countdown: None,
                                   graph=GraphClient(world.url, "v27.0"),
                                   instagram_graph=GraphClient(instagram.url, "v27.0"))
    fresh = restarted.token_for(restarted.settings.accounts[0])
    assert fresh != IG_TOKEN and fresh in instagram.tokens and fresh not in instagram.revoked


def test_an_expired_token_pauses_the_account_until_a_new_one_is_in_the_file(rt, instagram):
    instagram.expires[IG_TOKEN] = time.time() - 1
    account = rt.settings.accounts[0]
    assert tokens.refresh(rt, account, now=time.time()) is False
    paused = rt.store.accounts.paused(IG)
    assert paused and "expired or revoked" in paused["reason"]
    state = tokens.token_state(rt.store, account)
    assert state and "log in again" in state["error"]


def test_a_token_another_process_refreshed_is_used_at_once_and_nothing_pauses(rt, instagram):
    instagram.add_message(IG, "instagram", USER, "m_race", text="x")
    route(rt, parse_envelope(_webhook("m_race")))
    instagram.revoked.add(IG_TOKEN)  # as if another process had refreshed it a moment ago
    rt.store.accounts.keep_token(IG, {"token": "ig-refreshed", "origin": fingerprint(IG_TOKEN)})
    instagram.add_account(IG, "ig-refreshed")
    hydration.run(rt, HydrationQueue(IG), failures=0)
    assert not rt.store.accounts.paused(IG)
    _hydrate_all(rt)
    assert [r["hydration"] for r in _delivered(rt)] == ["complete"]


def test_the_instagram_login_account_is_found_by_its_id_beside_a_page_linked_to_it(world, instagram,
                                                                                  store, tmp_path):
    from workers.sync.estimate import estimate

    settings = settings_from_dict({
        "meta": {"app_secrets": ["s"], "verify_token": "t", "graph_url": world.url,
                 "instagram_graph_url": instagram.url},
        "accounts": [{"page_id": "P1", "instagram_id": IG, "access_token": "token-p1"},
                     {"login": "instagram", "instagram_id": IG, "access_token": IG_TOKEN,
                      "calls_per_second": 1000}],
        "handlers": [{"type": "jsonl", "path": str(tmp_path / "events.jsonl")}]}, env={})
    page, login = settings.accounts
    assert settings.account_for(IG) is login and settings.account_for("P1") is page
    rt = in_process_runtime(store, settings, lambda name, args, countdown: None,
                            graph=GraphClient(world.url, "v27.0"),
                            instagram_graph=GraphClient(instagram.url, "v27.0"))
    instagram.add_message(IG, "instagram", USER, "m_est", text="x", created=time.time() - 60)
    assert estimate(rt, IG, platform="all", since=None)["conversations"] == 1
    assert run_to_end(rt, start_or_resume(rt, IG)).messages == 1
    assert world.calls == [] and {c["path"] for c in instagram.calls} == {"/me/conversations"}
