"""`inbox-relay playground`: the seeded Graph stand-in on 127.0.0.1, and the configuration of an
inbox-relay that uses it, written into the playground's directory at every start."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from workers.playground.graph_server import FakeGraphServer
from workers.playground.graph_world import GraphWorld
from workers.playground.seed import (
    INSTAGRAM_ID,
    LOGIN_ID,
    LOGIN_TOKEN,
    PAGE_ID,
    TOKEN,
    seeded_instagram_world,
    seeded_world,
)

CONFIG_FILE = "inbox-relay.toml"
APP_SECRET, VERIFY_TOKEN = "playground-app-secret", "playground-verify-token"
UNSEEN_AFTER = 10.0  # seconds after start: a message no webhook brings, for the sweep to find


def start_stand_in(directory: Path, graph_port: int = 0) -> tuple[Path, FakeGraphServer]:
    """Serve the seeded worlds, Facebook's and Instagram Login's (until the process ends), and
    write the configuration that uses them."""
    world = seeded_world()
    server = FakeGraphServer(world, port=graph_port).__enter__()
    instagram = FakeGraphServer(seeded_instagram_world()).__enter__()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / CONFIG_FILE
    config.write_text(_config(server.url, instagram.url))
    config.chmod(0o600)
    later = threading.Timer(UNSEEN_AFTER, _message_no_webhook_brings, args=(world,))
    later.daemon = True
    later.start()
    return config, server


def _message_no_webhook_brings(world: GraphWorld) -> None:
    world.add_message(PAGE_ID, "messenger", "playground-dan", f"m_playground_unseen_{int(time.time())}",
                      text="Did you get my message? (no webhook came for this one)")


def _config(graph_url: str, instagram_url: str) -> str:
    return f'''# Written by `inbox-relay playground` at each start: edit a copy, not this file.
[meta]
app_secrets = ["{APP_SECRET}"]
verify_token = "{VERIFY_TOKEN}"
graph_url = "{graph_url}"   # the Graph API stand-in, not Meta
instagram_graph_url = "{instagram_url}"   # graph.instagram.com's stand-in

[[accounts]]
page_id = "{PAGE_ID}"
instagram_id = "{INSTAGRAM_ID}"
access_token = "{TOKEN}"

[[accounts]]               # an Instagram account without a Page (Instagram Login)
login = "instagram"
instagram_id = "{LOGIN_ID}"
access_token = "{LOGIN_TOKEN}"

[sync]
sweep_every = "1m"

[[handlers]]
type = "jsonl"
path = "var/events.jsonl"
'''


def banner(config: Path, server: FakeGraphServer, port: int) -> list[str]:
    """What to try, once `run` is ready."""
    where = f"--config {config}"
    to = "" if port == 8000 else f" --to http://127.0.0.1:{port}/webhook"
    events = config.parent / "var" / "events.jsonl"
    return [f"playground: a Graph API stand-in at {server.url} serves Page {PAGE_ID} (Messenger and "
            f"Instagram {INSTAGRAM_ID}) with 3 conversations; events land in {events}",
            f"  a hydrated message:  inbox-relay send-test-event text --wait {where}{to}",
            f"  and an Instagram Login account {LOGIN_ID} (no Page) on a second stand-in",
            f"  the history:         inbox-relay sync --account {PAGE_ID} {where}  (or --account {LOGIN_ID})",
            "  the sweep (without a sync) finds a message no webhook brought in about three minutes",
            f"  what happened:       inbox-relay status {where}"]
