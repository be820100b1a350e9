"""Edits, unsends and the API version, end to end: `inbox-relay run` with the Graph stand-in over
HTTP. An edit arrives with the text as edited (read from the Graph API like a message), an unsend
arrives as `message_delete` without a Graph call, and every webhook record carries the delivery's
Facebook-API-Version header."""

from __future__ import annotations

import json
import time

import pytest

from tests.cli_run import cli
from tests.harness import ROOT, GraphBackedRelay, wait_for
from workers.playground.graph_world import GraphWorld
from workers.runtime.celery_setup import create_celery
from workers.runtime.config import load_settings
from workers.scheduler import INGEST_TASK

PAGE, IG_PAGE, IG_ACCOUNT = "300300300300301", "300300300300302", "17841400300300302"
USER, IG_USER = "4400000000000001", "4400000000000002"
VERSION = {"Facebook-API-Version": "v27.0"}
FAST = {"hydration": {"coalesce_seconds": 0.2}}


@pytest.fixture(scope="module")
def relay():
    world = GraphWorld()
    for page in (PAGE, IG_PAGE):
        world.add_account(page, f"token-{page}")
    accounts = [{"page_id": PAGE, "access_token": f"token-{PAGE}"},
                {"page_id": IG_PAGE, "instagram_id": IG_ACCOUNT, "access_token": f"token-{IG_PAGE}"}]
    with GraphBackedRelay(world, accounts, extra=FAST) as relay:
        yield relay


def _delivery(platform_object: str, account: str, user: str, *bodies: dict) -> bytes:
    """One delivery of an item per body (`{"message": ...}`, `{"message_edit": ...}`), escaped as
    Meta escapes it."""
    now = int(time.time() * 1000)
    items = [{"sender": {"id": user}, "recipient": {"id": account}, "timestamp": now + n, **body}
             for n, body in enumerate(bodies)]
    envelope = {"object": platform_object, "entry": [{"id": account, "time": now, "messaging": items}]}
    return json.dumps(envelope).replace("/", "\\/").encode()


def _ig(*bodies: dict) -> bytes:
    return _delivery("instagram", IG_ACCOUNT, IG_USER, *bodies)


def _item(delivery: bytes) -> dict:
    """The first item of a delivery, as the record's `raw` holds it."""
    return json.loads(delivery)["entry"][0]["messaging"][0]


def _record(relay, message: str, **fields: object) -> dict:
    """The first record the handler got whose fields have these values."""
    return wait_for(lambda: next((r for r in relay.events()
                                  if all(r.get(k) == v for k, v in fields.items())), None),
                    timeout=30, message=message)


def test_an_instagram_edit_arrives_with_the_text_as_edited(relay):
    relay.world.add_message(IG_PAGE, "instagram", IG_USER, "ig_m_edit", text="before the edit")
    body = _ig({"message": {"mid": "ig_m_edit", "text": "before the edit"}})
    assert relay.post(body, headers=VERSION)[0] == 200
    original = _record(relay, "the message", mid="ig_m_edit", kind="message")
    assert original["message"]["message"] == "before the edit"

    relay.world.edit_message("ig_m_edit", "after the edit")  # Instagram's edit webhook has no text
    edit = _ig({"message_edit": {"mid": "ig_m_edit", "num_edit": 1}})
    assert relay.post(edit, headers=VERSION)[0] == 200
    record = _record(relay, "the edit", mid="ig_m_edit", kind="message_edit")
    assert (record["hydration"], record["message"]["message"]) == ("complete", "after the edit")
    assert record["conversation_id"] == original["conversation_id"] and record["id"] != original["id"]
    assert (record["api_version"], record["source"]) == ("v27.0", "webhook")

    relay.world.edit_message("ig_m_edit", "edited twice")
    again = _ig({"message_edit": {"mid": "ig_m_edit", "num_edit": 2}})
    assert relay.post(again, headers=VERSION)[0] == 200
    second = _record(relay, "the second edit", raw=_item(again), hydration="complete")
    assert second["message"]["message"] == "edited twice" and second["id"] != record["id"]


def test_an_unsend_arrives_as_message_delete_without_a_graph_call(relay):
    relay.world.add_message(IG_PAGE, "instagram", IG_USER, "ig_m_unsent", text="soon unsent")
    calls_before = relay.world.count(page_id=IG_PAGE)
    unsend = _ig({"message": {"mid": "ig_m_unsent", "is_deleted": True}})
    assert relay.post(unsend, headers=VERSION)[0] == 200
    record = _record(relay, "the unsend", mid="ig_m_unsent")
    assert (record["kind"], record["hydration"]) == ("message_delete", "not_applicable")
    assert record["message"] is None
    assert record["api_version"] == "v27.0" and record["raw"]["message"]["is_deleted"] is True
    assert relay.world.count(page_id=IG_PAGE) == calls_before, "nothing to read: no Graph call"
    assert not [call for call in relay.world.calls if "ig_m_unsent" in call["path"]]


def test_an_edit_of_a_message_a_sync_brought_is_not_left_out(relay):
    relay.world.add_message(PAGE, "messenger", USER, "m_synced", text="synced text")
    result = cli("sync", "--account", PAGE, "--platform", "messenger", "--config", str(relay.config),
                 cwd=ROOT)
    assert result.returncode == 0, result.stderr
    synced = _record(relay, "the synced message", mid="m_synced", source="sync")
    assert synced["api_version"] is None, "a synced message came with no webhook"

    relay.world.edit_message("m_synced", "edited after the sync")
    # The message's own webhook, late, then its edit: the first was brought already, the second is news.
    late = _delivery("page", PAGE, USER, {"message": {"mid": "m_synced", "text": "synced text"}},
                     {"message_edit": {"mid": "m_synced", "num_edit": 1, "text": "edited after the sync"}})
    assert relay.post(late, headers=VERSION)[0] == 200
    edit = _record(relay, "the edit", mid="m_synced", kind="message_edit")
    assert (edit["hydration"], edit["message"]["message"]) == ("complete", "edited after the sync")
    assert [r["source"] for r in relay.events() if r["mid"] == "m_synced" and r["kind"] == "message"] == [
        "sync"], "the message itself reached the handler once"


def test_a_replayed_delivery_keeps_its_version(relay):
    body = _delivery("page", PAGE, USER, {"read": {"watermark": 1}})
    assert relay.post(body, headers={"Facebook-API-Version": "v26.0"})[0] == 200
    first = _record(relay, "the read", kind="read", api_version="v26.0")
    listed = cli("deliveries", "list", "--json", "--config", str(relay.config), cwd=ROOT)
    row = next(r for r in json.loads(listed.stdout) if r["api_version"] == "v26.0")
    replay = cli("deliveries", "replay", str(row["id"]), "--config", str(relay.config), cwd=ROOT)
    assert replay.returncode == 0, replay.stderr
    wait_for(lambda: [r["api_version"] for r in relay.events() if r["id"] == first["id"]] == ["v26.0"] * 2,
             timeout=30, message="the replayed read, with its version")


def test_an_ingest_message_an_earlier_release_queued_still_runs(relay):
    body = _delivery("page", PAGE, USER, {"read": {"watermark": 2}})
    # The arguments an earlier release published: no API version.
    earlier_args = [10**9, body.decode(), False, None]
    create_celery(load_settings(relay.config)).send_task(INGEST_TASK, args=earlier_args)
    record = _record(relay, "the read an earlier release queued", raw=_item(body))
    assert record["api_version"] is None
