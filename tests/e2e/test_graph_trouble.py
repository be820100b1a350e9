"""A failing Graph API is visible: `status` shows the account's last answer (with fbtrace_id, never
the token), and `send-test-event --wait` says hydration is retrying instead of asking whether a
worker runs."""

from __future__ import annotations

from tests.cli_run import cli
from tests.harness import GraphBackedRelay, wait_for
from workers.playground.graph_world import GraphWorld

PAGE, TOKEN = "P1", "token-P1-secret"


def test_status_and_send_test_event_name_the_graph_failure():
    world = GraphWorld(transient_rate=1.0)  # every read answers HTTP 500, code 2
    world.add_account(PAGE, TOKEN)
    accounts = [{"page_id": PAGE, "access_token": TOKEN}]
    with GraphBackedRelay(world, accounts, extra={"hydration": {"coalesce_seconds": 0}}) as relay:
        sent = cli("send-test-event", "text", "--wait", "--timeout", "8", "--config", str(relay.config),
                   "--to", relay.url + "/webhook", cwd=relay.dir)
        assert sent.returncode == 1
        assert "Hydration is retrying: the Graph API answers HTTP 500 code 2 fbtrace_id Fake" in sent.stderr
        status = wait_for(lambda: (out := cli("status", "--config", str(relay.config), cwd=relay.dir).stdout)
                          and "Graph API failing" in out and out, timeout=20, message="the status line")
        assert f"{PAGE}: Graph API failing" in status and "HTTP 500 code 2 fbtrace_id Fake" in status
        assert "next try in" in status and TOKEN not in status + sent.stderr
        log = relay.log.read_text()
        assert log.count("Graph API failing") == 1, "the cause is logged once, not at every retry"
