"""Parsing is total: any JSON value, and any mutation of a real delivery, parses without raising,
and every item of the envelope comes out as exactly one event."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import FIXTURES
from workers.ingest.parse import CHANNELS, parse_envelope
from workers.records import KINDS
from workers.times import MAX_MILLIS

SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([-1e308, 1e308, -(10**400), 10**400, 1e11, -1e11])
           | st.text() | st.sampled_from(["page", "instagram", "1e999", "inf", "nan", "\ud800",
                                          "2024-01-01T00:00:00+00:00", "99999999999999999"]))
KEYS = st.text(max_size=8) | st.sampled_from(["object", "entry", "id", "time", *CHANNELS, "sender",
                                              "recipient", "timestamp", "message", "mid", "is_echo",
                                              "read", "reaction", "value", "from", "field"])
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(KEYS, inner, max_size=5), max_leaves=30)
FIXTURE_BODIES = [json.loads(p.read_bytes()) for p in sorted((FIXTURES / "webhooks").glob("*.json"))]
SLOW = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def expected_count(envelope) -> int:
    """How many events an envelope holds: one per channel item, one per entry we cannot read."""
    if not isinstance(envelope, dict):
        return 0
    entries = envelope.get("entry")
    entries = entries if isinstance(entries, list) else ([] if entries is None else [entries])
    total = 0
    for entry in entries:
        if not isinstance(entry, dict) or not any(c in entry for c in CHANNELS):
            total += 1
            continue
        for channel in CHANNELS:
            items = entry.get(channel)
            total += len(items) if isinstance(items, list) else int(items is not None)
    return total


def check(envelope) -> None:
    events = parse_envelope(envelope)
    assert len(events) == expected_count(envelope)
    for event in events:
        assert event.kind in KINDS
        assert event.timestamp is None or 0 <= event.timestamp <= MAX_MILLIS
        json.dumps(event.to_dict())  # every record can be sent on
        assert event.id.startswith("evt_")
        for text in (event.account_id, event.sender_id, event.recipient_id, event.mid):
            if text is not None:
                text.encode("utf-8")  # ids become Redis keys: they must encode (an empty one may)


@SLOW
@given(JSON)
def test_any_json_value_parses(value):
    check(value)


@SLOW
@given(st.lists(JSON, max_size=4), st.sampled_from(["page", "instagram", "other"]))
def test_any_items_inside_a_real_envelope_parse(items, obj):
    check({"object": obj, "entry": [{"id": "1", "time": 1, "messaging": items, "changes": items}]})


def _mutate(value, path: list[int], replacement):
    """`value` with the node reached by following `path` (indexes into children) replaced."""
    if not path or not isinstance(value, (dict, list)) or not value:
        return replacement
    keys = list(value) if isinstance(value, dict) else list(range(len(value)))
    key = keys[path[0] % len(keys)]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[key] = _mutate(value[key], path[1:], replacement)
    return copy


@SLOW
@given(st.sampled_from(FIXTURE_BODIES), st.lists(st.integers(0, 50), max_size=6), JSON)
def test_mutated_real_deliveries_parse(body, path, replacement):
    check(_mutate(body, path, replacement))


def test_poison_values_from_the_field_parse():
    item = {"sender": {"id": "\ud800"}, "recipient": {"id": "1"}, "timestamp": float("inf"),
            "message": {"mid": "m", "text": "x"}}
    deep = json.loads("[" * 600 + "]" * 600)  # as json.loads gives it: the web edge caps depth at 64
    for envelope in ({"object": ["page"], "entry": [{"id": "1", "messaging": [item]}]},
                     {"object": "page", "entry": [{"id": "1", "messaging": [{**item, "timestamp": "inf"}]}]},
                     {"object": "page", "entry": [{"id": "1", "messaging": [{**item, "timestamp": 10**16}]}]},
                     *({"object": "page", "entry": [{"id": "1", "messaging": [{**item, "timestamp": t}]}]}
                       for t in (-1e308, 10**400)),
                     {"object": "page", "entry": [{"id": "1", "messaging": [deep]}]},
                     {"object": "page", "entry": "not a list"}):
        check(envelope)
    [event] = parse_envelope({"object": "page", "entry": [{"id": "1", "messaging": [item]}]})
    assert event.timestamp is None and event.sender_id == "\\ud800" and event.kind == "message"
