"""`inbox-relay check` and `inbox-relay subscribe` through the real command line, against the Graph
API stand-in served over HTTP."""

from __future__ import annotations

import pytest

from tests.cli_run import cli
from tests.harness import SECRET, VERIFY_TOKEN, redis_url, write_config
from workers.connect.checks import NEEDED_FIELDS
from workers.errors import GraphPermanent, GraphTokenInvalid
from workers.graph import GraphClient
from workers.playground.graph_server import FakeGraphServer
from workers.playground.graph_world import GraphWorld

PAGE, TOKEN = "100200300400500", "page-token-100-secret"
OTHER, OTHER_TOKEN = "600700800900100", "page-token-600-secret"
SECRETS = (TOKEN, OTHER_TOKEN, SECRET, VERIFY_TOKEN)


@pytest.fixture
def world():
    world = GraphWorld()
    world.add_account(PAGE, TOKEN)
    world.add_account(OTHER, OTHER_TOKEN)
    world.page_names[PAGE] = "Bäckerei Köln"
    with FakeGraphServer(world) as server:
        world.url = server.url
        yield world
    assert not [c for c in world.setup_calls if c["token_in_url"]], "a token went into a URL"


def _config(tmp_path, world, accounts=((PAGE, TOKEN),), **extra):
    return write_config(tmp_path / "inbox-relay.toml", graph_url=world.url, extra=extra,
                        accounts=[{"page_id": page, "access_token": token} for page, token in accounts])


def _run(tmp_path, *args):
    result = cli(*args, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert not [secret for secret in SECRETS if secret in output], output
    assert "Traceback" not in output
    return result, output


def test_check_passes_on_a_good_setup(tmp_path, world):
    world.subscriptions[PAGE] = list(NEEDED_FIELDS)
    result, output = _run(tmp_path, "check", "--config", str(_config(tmp_path, world)))
    assert result.returncode == 0, output
    assert "page 'Bäckerei Köln': the token works" in output
    assert f"subscribed to all {len(NEEDED_FIELDS)} webhook fields" in output and "all good" in output
    assert [c["path"] for c in world.setup_calls] == [f"/{PAGE}", f"/{PAGE}/subscribed_apps"]


def test_check_fails_naming_the_account_whose_token_is_revoked(tmp_path, world):
    world.subscriptions[PAGE] = world.subscriptions[OTHER] = list(NEEDED_FIELDS)
    world.revoked.add(OTHER_TOKEN)
    config = _config(tmp_path, world, accounts=((PAGE, TOKEN), (OTHER, OTHER_TOKEN)))
    result, output = _run(tmp_path, "check", "--config", str(config))
    assert result.returncode == 1
    assert f"FAIL  account {OTHER}: token invalid or expired: make a new page token" in output
    assert f"ok    account {PAGE}" in output and f"FAIL  account {PAGE}" not in output
    assert f"1 to fix: account {OTHER}" in output


def test_check_fails_naming_missing_fields_and_the_fix(tmp_path, world):
    world.subscriptions[PAGE] = ["messages", "message_reads"]
    result, output = _run(tmp_path, "check", "--config", str(_config(tmp_path, world)))
    assert result.returncode == 1
    line = next(line for line in output.splitlines() if line.startswith(f"FAIL  account {PAGE}"))
    assert "messaging_postbacks" in line and "message_edits" in line and "message_reads" not in line
    assert f"inbox-relay subscribe --account {PAGE}" in line


def test_check_fails_when_no_app_is_subscribed(tmp_path, world):
    result, output = _run(tmp_path, "check", "--config", str(_config(tmp_path, world)))
    assert result.returncode == 1 and f"account {PAGE}: no app is subscribed" in output


def test_subscribe_then_check_passes(tmp_path, world):
    config = str(_config(tmp_path, world))
    result, output = _run(tmp_path, "subscribe", "--account", PAGE, "--config", config)
    assert result.returncode == 0, output
    assert world.subscriptions[PAGE] == list(NEEDED_FIELDS)
    assert "now subscribed to: " + ", ".join(NEEDED_FIELDS) in output
    assert [c["method"] for c in world.setup_calls] == ["POST", "GET"]
    assert _run(tmp_path, "check", "--config", config)[0].returncode == 0


def test_subscribe_chosen_fields_leaves_check_failing(tmp_path, world):
    config = str(_config(tmp_path, world))
    result, output = _run(tmp_path, "subscribe", "--account", PAGE, "--fields", "messages, message_reads",
                          "--config", config)
    assert result.returncode == 0 and world.subscriptions[PAGE] == ["messages", "message_reads"]
    assert "inbox-relay also needs messaging_postbacks" in output
    assert _run(tmp_path, "check", "--config", config)[0].returncode == 1


@pytest.mark.parametrize("args, expected", [
    (("--account", "999"), "no [[accounts]] entry with page id 999"),
    (("--account", PAGE, "--fields", "messages,no such"), "expected webhook field names"),
    (("--account", PAGE, "--fields", "messages,bogus_field"), "'bogus_field' is not a Page webhook field"),
    (("--account", PAGE, "--fields", "message_reeds"), "(did you mean message_reads?)"),
])
def test_subscribe_errors_are_clean(tmp_path, world, args, expected):
    result, output = _run(tmp_path, "subscribe", *args, "--config", str(_config(tmp_path, world)))
    assert result.returncode != 0 and expected in output
    assert PAGE not in world.subscriptions


def test_subscribe_with_a_revoked_token_names_the_account(tmp_path, world):
    world.revoked.add(TOKEN)
    result, output = _run(tmp_path, "subscribe", "--account", PAGE, "--config", str(_config(tmp_path, world)))
    assert result.returncode == 1 and f"account {PAGE}: token invalid or expired" in output


def test_a_shared_redis_without_keys_fails_check_unless_plaintext(tmp_path, world):
    world.subscriptions[PAGE] = list(NEEDED_FIELDS)
    shared = {"broker_url": redis_url(10)}
    config = _config(tmp_path, world, queue=shared)
    result, output = _run(tmp_path, "check", "--config", str(config))
    assert result.returncode == 1
    assert "FAIL  security: a shared Redis without [security] encryption_keys" in output
    assert "inbox-relay keygen" in output
    config = _config(tmp_path, world, queue=shared, security={"plaintext": True})
    assert _run(tmp_path, "check", "--config", str(config))[0].returncode == 0


def test_check_says_when_the_graph_api_does_not_answer(tmp_path, world):
    config = write_config(tmp_path / "c.toml", graph_url="http://127.0.0.1:9",
                          accounts=[{"page_id": PAGE, "access_token": TOKEN}])
    result, output = _run(tmp_path, "check", "--config", str(config))
    assert result.returncode == 1
    assert f"account {PAGE}: cannot read the page: the Graph API did not answer" in output


def test_appsecret_proof_goes_with_check_when_configured(tmp_path, world):
    world.app_secret = SECRET
    world.subscriptions[PAGE] = list(NEEDED_FIELDS)
    result, output = _run(tmp_path, "check", "--config",
                          str(_config(tmp_path, world, meta={"appsecret_proof": True})))
    assert result.returncode == 0, output


def test_graph_client_post_sends_the_token_in_the_header_and_classifies_errors(world):
    client = GraphClient(world.url, "v27.0")
    body, _ = client.post(f"{PAGE}/subscribed_apps", token=TOKEN, params={"subscribed_fields": "messages"})
    assert body == {"success": True} and world.subscriptions[PAGE] == ["messages"]
    with pytest.raises(GraphTokenInvalid):
        client.post(f"{PAGE}/subscribed_apps", token="not-a-token", params={"subscribed_fields": "messages"})
    with pytest.raises(GraphPermanent, match="subscribed_fields is required"):
        client.post(f"{PAGE}/subscribed_apps", token=TOKEN)
    assert [c["method"] for c in world.setup_calls] == ["POST", "POST", "POST"]


def test_check_fails_when_the_keys_do_not_open_the_store(tmp_path, world):
    import time

    from workers.crypto import Codec, new_key
    from workers.records import DeadLetter
    from workers.state import Store

    world.subscriptions[PAGE] = list(NEEDED_FIELDS)
    old, new = new_key(), new_key()
    url = redis_url(11)
    Store(url, codec=Codec((old,))).dead_letters.add(DeadLetter(
        handler="jsonl", event={"id": "evt_1", "kind": "message"}, attempts=1, error="boom",
        first_failed_at=time.time(), failed_at=time.time()))
    config = _config(tmp_path, world, queue={"broker_url": url}, security={"encryption_keys": [new]})
    result, output = _run(tmp_path, "check", "--config", str(config))
    assert result.returncode == 1 and "FAIL  store keys:" in output and "rotate-keys" in output
    config = _config(tmp_path, world, queue={"broker_url": url}, security={"encryption_keys": [new, old]})
    result, output = _run(tmp_path, "check", "--config", str(config))
    assert result.returncode == 0 and "ok    store keys: the configured keys open the store (1 " in output
    assert old not in output and new not in output
