"""The whole path on real components: `inbox-relay run` (gunicorn, relay, Celery worker, broker)
with a Graph API stand-in over HTTP; on the private Redis, the machine's Redis, and RabbitMQ."""

import json
import time

import pytest

from tests.harness import FIXTURES, TEST_REDIS, RelayProcess, redis_url, wait_for, write_config
from workers.ingest.parse import parse_envelope
from workers.playground.graph_server import FakeGraphServer
from workers.playground.graph_world import GraphWorld

WEBHOOKS = sorted((FIXTURES / "webhooks").glob("*.json"))
PAGE = "111899832631525"
CUSTOMER = "1433960459967306"
IG_PAGE, IG_ACCOUNT, IG_USER = "2000000000001", "17841400000000001", "9100000000000001"
OLD_USER = "5550000000000001"


def _world() -> GraphWorld:
    world = GraphWorld()
    for page in (PAGE, "PAGE_ID", "1717527131834678", IG_PAGE):
        world.add_account(page, f"token-{page}")
    world.add_message(PAGE, "messenger", CUSTOMER, "mid.1480279487147:4388d3b344", text="Hi",
                      created=1480279487.147)
    world.add_message(IG_PAGE, "instagram", IG_USER, "aWdfZAG1", text="hello from instagram")
    for n in range(25):  # the oldest five have no details
        world.add_message(PAGE, "messenger", OLD_USER, f"m_old_{n}", text=f"text {n}",
                          created=time.time() - 100 + n)
    return world


def _accounts() -> list[dict]:
    accounts = [{"page_id": p, "access_token": f"token-{p}"} for p in (PAGE, "PAGE_ID", "1717527131834678")]
    return [*accounts, {"page_id": IG_PAGE, "instagram_id": IG_ACCOUNT, "access_token": f"token-{IG_PAGE}"}]


BROKERS = {"embedded": ("", None), "redis": (TEST_REDIS + "/5", None),
           "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", TEST_REDIS + "/4")}


@pytest.fixture(scope="module", params=list(BROKERS))
def system(request):
    world = _world()
    broker, store = BROKERS[request.param]
    for url in (broker, store):
        if url and url.startswith("redis"):
            redis_url(int(url.rsplit("/", 1)[1]))  # flush that database
    extra = {"hydration": {"coalesce_seconds": 0.2}, "queue": {"store_url": store} if store else {}}
    with FakeGraphServer(world) as graph:
        relay = RelayProcess(lambda d: write_config(d / "inbox-relay.toml", graph_url=graph.url,
                                                    accounts=_accounts(), broker_url=broker, extra=extra))
        relay.start()
        relay.world = world
        relay.store_url = store or broker or f"unix://{relay.dir / 'var' / 'redis.sock'}"
        yield relay
        relay.cleanup()


def _expected_ids(bodies) -> set[str]:
    return {e.id for body in bodies for e in parse_envelope(json.loads(body))}


def _ids_in(system) -> list[str]:
    return [record["id"] for record in system.events()]


def test_every_fixture_is_accepted_and_delivered_once(system):
    bodies = [path.read_bytes() for path in WEBHOOKS]
    for body in bodies:
        status, _ = system.post(body)
        assert status == 200
    expected = _expected_ids(bodies)
    wait_for(lambda: expected <= set(_ids_in(system)), timeout=30, message="every fixture event")
    assert sorted(_ids_in(system)) == sorted(set(_ids_in(system))), "an event was delivered twice"
    unknown = [r for r in system.events() if r["kind"] == "unknown"]
    assert any(r["raw"].get("foo") for r in unknown)


def test_a_repeated_delivery_reaches_the_handler_once(system):
    bodies = [path.read_bytes() for path in WEBHOOKS[:10]]
    for body in bodies * 2:
        assert system.post(body)[0] == 200
    marker = json.dumps({"object": "page", "entry": [{"id": PAGE, "messaging": [
        {"sender": {"id": "u-marker"}, "recipient": {"id": PAGE}, "timestamp": 1,
         "read": {"watermark": 1}}]}]})
    system.post(marker.encode())
    store = system.open_store()
    wait_for(lambda: _expected_ids([marker]) <= set(_ids_in(system)) and not store.queues.names(), timeout=30,
             message="the marker and empty queues")
    ids = _ids_in(system)
    assert len(ids) == len(set(ids))


def test_message_is_hydrated_with_conversation_id(system):
    record = wait_for(lambda: next((r for r in system.events() if r["mid"] == "mid.1480279487147:4388d3b344"
                                    and r["kind"] == "message"), None), message="botman_text hydrated")
    assert record["hydration"] == "complete"
    assert record["conversation_id"] and record["conversation_id"].startswith("t_")
    assert record["message"]["message"] == "Hi" and record["message"]["from"]["id"] == CUSTOMER
    assert record["raw"]["message"]["text"] == "Hi"


def _message_body(platform_object: str, account: str, user: str, mid: str, *, timestamp: int) -> bytes:
    # Meta escapes "/" and non-ASCII; keep the bytes exactly as they would arrive.
    return json.dumps({"object": platform_object, "entry": [{"id": account, "time": timestamp, "messaging": [
        {"sender": {"id": user}, "recipient": {"id": account}, "timestamp": timestamp,
         "message": {"mid": mid, "text": "caf\u00e9 http://x/y"}}]}]}).replace("/", "\\/").encode()


def test_instagram_message_is_hydrated_through_its_page(system):
    body = _message_body("instagram", IG_ACCOUNT, IG_USER, "aWdfZAG1",
                         timestamp=int(time.time() * 1000) - 1000)
    assert b"\\/" in body and b"\\u00e9" in body
    assert system.post(body)[0] == 200
    record = wait_for(lambda: next((r for r in system.events() if r["mid"] == "aWdfZAG1"), None),
                      message="instagram message")
    assert (record["platform"], record["account_id"], record["hydration"]) == (
        "instagram", IG_ACCOUNT, "complete")
    assert record["message"]["message"] == "hello from instagram" and record["conversation_id"]


def test_beyond_the_20_newest_is_delivered_unavailable(system):
    now = int(time.time() * 1000)
    for mid, stamp in (("m_old_0", now - 100_000), ("m_old_24", now - 76_000)):
        assert system.post(_message_body("page", PAGE, OLD_USER, mid, timestamp=stamp))[0] == 200
    old_mids = ("m_old_0", "m_old_24")
    records = wait_for(lambda: {r["mid"]: r for r in system.events() if r["mid"] in old_mids}
                       if len([r for r in system.events() if r["mid"] in old_mids]) == 2 else None,
                       message="both old messages")
    assert records["m_old_24"]["hydration"] == "complete"
    old = records["m_old_0"]
    assert old["hydration"] == "unavailable" and "20 newest" in old["hydration_error"]
    assert old["message"]["id"] == "m_old_0"
    assert old["conversation_id"] == records["m_old_24"]["conversation_id"]


def test_logs_hold_no_secret_token_or_message_text(system):
    import urllib.request

    from tests.harness import SECRET, VERIFY_TOKEN

    query = f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=42"
    with urllib.request.urlopen(f"{system.url}/webhook?{query}", timeout=5) as response:
        assert response.read() == b"42"
    body = _message_body("instagram", IG_ACCOUNT, IG_USER, "aWdfZAG1",
                         timestamp=int(time.time() * 1000) - 1000)
    assert system.post(body)[0] == 200  # the same message again (deduplicated) if the test above ran
    wait_for(lambda: any(r["mid"] == "aWdfZAG1" for r in system.events()), message="hydrated messages")
    log = system.log.read_text()
    assert "GET /webhook" in log, "the access log is expected in the run log"
    secrets = (SECRET, VERIFY_TOKEN, f"token-{PAGE}", "hello from instagram", "This is the first message")
    for secret in secrets:
        assert secret not in log, f"{secret!r} leaked into the log"
