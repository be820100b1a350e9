"""An Instagram Login account end to end: `inbox-relay run` with the Facebook host and the Instagram
host served apart; a webhook signed with the Instagram app secret; hydration, the token refresh at
start, `status`, /metrics, `check` and `subscribe`, with no token in any log or output."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.cli_run import cli
from tests.e2e.test_handlers_e2e import _cli
from tests.harness import GraphBackedRelay, wait_for, write_config
from workers.connect.checks import INSTAGRAM_NEEDED_FIELDS
from workers.playground.graph_server import FakeGraphServer
from workers.playground.graph_world import GraphWorld

IG, TOKEN, USER = "17841400000000007", "ig-user-token-e2e", "IGSID7"
DAY = 86400.0


def _instagram_world() -> GraphWorld:
    world = GraphWorld()
    world.me_only = True
    world.add_account(IG, TOKEN, issued=time.time() - 55 * DAY, expires=time.time() + 5 * DAY)
    return world


@pytest.fixture(scope="module")
def system():
    facebook, instagram = GraphWorld(), _instagram_world()
    accounts = [{"login": "instagram", "instagram_id": IG, "access_token": TOKEN}]
    with GraphBackedRelay(facebook, accounts, instagram_world=instagram) as relay:
        yield relay


def _message(mid: str) -> bytes:
    stamp = int(time.time() * 1000)
    return json.dumps({"object": "instagram", "entry": [{"id": IG, "time": stamp, "messaging": [
        {"sender": {"id": USER}, "recipient": {"id": IG}, "timestamp": stamp,
         "message": {"mid": mid, "text": "hi"}}]}]}).encode()


def _no_token_in(text: str, system) -> None:
    tokens = {TOKEN, *system.instagram_world.tokens}
    assert not [t for t in tokens if t in text], "a token was printed"


def test_the_token_is_refreshed_at_start_and_status_and_metrics_show_its_expiry(system):
    wait_for(lambda: system.instagram_world.refreshes == 1, timeout=30, message="the refresh at start")
    def status_with_expiry() -> str | None:
        out = _cli(system, "status")
        return out if "token expires" in out else None

    status = wait_for(status_with_expiry, timeout=10, message="status with the token's expiry")
    expiry = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 60 * DAY))
    assert f"{IG}: Instagram Login token expires {expiry}" in status
    with urllib.request.urlopen(system.url + "/metrics", timeout=10) as response:
        metrics = response.read().decode()
    [line] = [m for m in metrics.splitlines() if m.startswith("inbox_relay_token_expiry_seconds{")]
    assert f'account="{IG}"' in line and float(line.split()[-1]) > 59 * DAY
    _no_token_in(status + metrics + system.log.read_text(), system)


def test_a_message_signed_with_the_instagram_secret_arrives_hydrated(system):
    wait_for(lambda: system.instagram_world.refreshes == 1, timeout=30, message="the refresh at start")
    system.instagram_world.add_message(IG, "instagram", USER, "m_ig_e2e", text="from graph.instagram.com")
    assert system.post(_message("m_ig_e2e"), secret="second-secret")[0] == 200
    record = wait_for(lambda: next((r for r in system.events() if r["mid"] == "m_ig_e2e"), None),
                      timeout=30, message="the hydrated message")
    assert record["hydration"] == "complete" and record["conversation_id"]
    assert record["message"]["message"] == "from graph.instagram.com"
    assert system.world.calls == [] and system.world.setup_calls == [], "a call went to the Facebook host"
    _no_token_in(system.log.read_text(), system)


def test_check_and_subscribe_use_me_on_the_instagram_host(tmp_path):
    instagram = _instagram_world()
    with FakeGraphServer(GraphWorld()) as facebook, FakeGraphServer(instagram) as host:
        config = write_config(tmp_path / "c.toml", graph_url=facebook.url,
                              accounts=[{"login": "instagram", "instagram_id": IG, "access_token": TOKEN}],
                              extra={"meta": {"instagram_graph_url": host.url}})
        before = cli("check", "--config", str(config), cwd=tmp_path)
        assert before.returncode == 1 and "no app is subscribed" in before.stdout
        assert f"Instagram @shop_{IG[-4:]}: the token works" in before.stdout
        done = cli("subscribe", "--account", IG, "--config", str(config), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert instagram.subscriptions[IG] == list(INSTAGRAM_NEEDED_FIELDS)
        after = cli("check", "--config", str(config), cwd=tmp_path)
        assert after.returncode == 0, after.stdout + after.stderr
        paths = {c["path"] for c in instagram.setup_calls}
        assert paths == {"/me", "/me/subscribed_apps"}
        for result in (before, done, after):
            assert TOKEN not in result.stdout + result.stderr
