import json

import pytest

from tests.harness import FIXTURES
from workers.ingest.parse import parse_envelope
from workers.times import to_millis

WEBHOOKS = sorted((FIXTURES / "webhooks").glob("*.json"))


def _events(name: str):
    return parse_envelope(json.loads((FIXTURES / "webhooks" / name).read_bytes()))


@pytest.mark.parametrize("path", WEBHOOKS, ids=lambda p: p.name)
def test_every_fixture_parses_into_json_serialisable_records(path):
    events = parse_envelope(json.loads(path.read_bytes()))
    items = sum(len(e.get(k) or []) for e in json.loads(path.read_bytes())["entry"]
                for k in ("messaging", "standby", "changes"))
    assert len(events) == items
    for event in events:
        record = json.loads(json.dumps(event.to_dict()))
        assert record["id"].startswith("evt_") and record["kind"]
        assert set(record) >= {"id", "kind", "platform", "account_id", "sender_id", "recipient_id",
                               "timestamp", "mid", "conversation_id", "message", "hydration", "raw"}


@pytest.mark.parametrize("name, kind", [
    ("botman_text.json", "message"), ("botman_text_is_echo.json", "echo"),
    ("botman_read.json", "read"), ("botman_delivery_no_timestamp.json", "delivery"),
    ("botman_postback_minimal.json", "postback"), ("botman_referral.json", "referral"),
    ("botman_optin_user_ref_no_sender.json", "optin"), ("botman_unknown_event_key.json", "unknown"),
    ("botman_empty_messaging_item.json", "unknown"), ("m4j_game_play.json", "unknown"),
    ("m4j_negative_object_not_page.json", "unknown"), ("chatwoot_ig_text.json", "unknown"),
])
def test_kinds(name, kind):
    assert [e.kind for e in _events(name)] == [kind]


def test_message_fields_and_stable_ids():
    event, = _events("botman_text.json")
    assert (event.platform, event.account_id, event.sender_id, event.recipient_id) == (
        "messenger", "111899832631525", "1433960459967306", "111899832631525")
    assert event.timestamp == 1480279487147 and event.mid == "mid.1480279487147:4388d3b344"
    assert event.hydration == "pending" and event.customer_id == "1433960459967306"
    assert _events("botman_text.json")[0].id == event.id
    assert _events("botman_text_is_echo.json")[0].id != event.id


def test_echo_belongs_to_the_customer_it_was_sent_to():
    event, = _events("m4j_text_echo_metadata.json")
    assert event.kind == "echo" and event.sender_id == event.account_id
    assert event.customer_id == event.recipient_id != event.account_id


def test_missing_sender_and_timestamp_are_nulls():
    event, = _events("botman_optin_user_ref_no_sender.json")
    assert event.sender_id is None and event.kind == "optin"
    event, = _events("m4j_delivery_no_mids_no_timestamp.json")
    assert event.timestamp is None


def test_unknown_object_has_no_platform():
    event, = _events("m4j_negative_object_not_page.json")
    assert event.platform is None and event.raw["message"]["text"] == "hello, world!"


def test_instagram_standby_and_changes():
    envelope = {"object": "instagram", "entry": [{"id": "178", "time": 1, "standby": [
        {"sender": {"id": "u"}, "recipient": {"id": "178"}, "timestamp": 5,
         "message": {"mid": "m1", "text": "x"}}],
        "changes": [{"field": "comments", "value": {"from": {"id": "u2"}, "id": "c1", "text": "hey"}}]}]}
    standby, change = parse_envelope(envelope)
    assert (standby.kind, standby.platform, standby.mid) == ("message", "instagram", "m1")
    assert (change.kind, change.sender_id, change.raw["field"]) == ("change", "u2", "comments")


@pytest.mark.parametrize("envelope", [
    {"entry": [None, 3, "x", {"messaging": "nope"}, {"messaging": [None, [], {"message": "str"}]}]},
    {"object": "page", "entry": [{"id": {"x": 1}, "messaging": [{"sender": "x", "timestamp": True}]}]},
])
def test_odd_items_never_raise(envelope):
    for event in parse_envelope(envelope):
        json.dumps(event.to_dict())


def test_unicode_escapes_decode():
    event, = _events("genies_text_unicode_escaped.json")
    assert "てすと" in event.raw["message"]["text"]


@pytest.mark.parametrize("value, expected", [
    (1480279487147, 1480279487147), ("1458668856463", 1458668856463), (1730231903, 1730231903000),
    ("2021-09-08T06:34:04+0000", 1631082844000), ("garbage", None), (None, None), (True, None),
])
def test_timestamps_to_millis(value, expected):
    assert to_millis(value) == expected


def _instagram(name: str) -> dict:
    """A chatwoot fixture (its factories leave out `object`) as Instagram sends it."""
    return {"object": "instagram", **json.loads((FIXTURES / "webhooks" / name).read_bytes())}


def _edit(num_edit: int, **edit: object) -> dict:
    item = {"sender": {"id": "u1"}, "recipient": {"id": "178"}, "timestamp": 1700000000000 + num_edit,
            "message_edit": {"mid": "m_edited", "num_edit": num_edit, **edit}}
    return {"object": "instagram", "entry": [{"id": "178", "time": 1, "messaging": [item]}]}


def test_an_unsend_is_a_message_delete_with_nothing_to_read():
    event, = parse_envelope(_instagram("chatwoot_ig_is_deleted.json"))
    assert (event.kind, event.hydration, event.mid) == ("message_delete", "not_applicable",
                                                         "message-id-to-delete")
    assert event.platform == "instagram" and event.raw["message"]["is_deleted"] is True


def test_an_unsent_echo_is_a_message_delete_too():
    envelope = _instagram("chatwoot_ig_is_deleted.json")
    envelope["entry"][0]["messaging"][0]["message"]["is_echo"] = True
    assert [e.kind for e in parse_envelope(envelope)] == ["message_delete"]


def test_an_edit_waits_for_hydration_like_a_message():
    event, = parse_envelope(_edit(1))
    assert (event.kind, event.hydration, event.mid) == ("message_edit", "pending", "m_edited")
    assert event.message is None, "the text as edited comes from the Graph API"


def test_each_edit_of_a_message_is_an_event_of_its_own():
    first, second = parse_envelope(_edit(1))[0], parse_envelope(_edit(2))[0]
    assert first.mid == second.mid and first.id != second.id
    assert parse_envelope(_edit(1))[0].id == first.id, "the same edit delivered twice is one event"


def test_every_event_of_a_delivery_carries_its_api_version():
    envelope = json.loads((FIXTURES / "webhooks" / "m4j_delivery_mids.json").read_bytes())
    envelope["entry"][0]["messaging"].append({"sender": {"id": "u"}, "recipient": {"id": "p"},
                                              "timestamp": 1, "read": {"watermark": 1}})
    events = parse_envelope(envelope, api_version="v27.0")
    assert len(events) == 2 and {e.api_version for e in events} == {"v27.0"}
    assert {e.to_dict()["api_version"] for e in events} == {"v27.0"}
    without = parse_envelope(envelope)
    assert {e.api_version for e in without} == {None}
    assert [e.id for e in without] == [e.id for e in events], "the version is no part of the id"
