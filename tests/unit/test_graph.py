"""The Graph client: error classes by code (on real error bodies), usage headers, appsecret_proof."""

import json

import pytest

from tests.harness import FIXTURES
from workers.errors import GraphPermanent, GraphRetryable, GraphThrottled, GraphTokenInvalid
from workers.graph import GraphClient, appsecret_proof, classify, usage_backoff
from workers.graph_page import Page
from workers.playground.graph_server import FakeGraphServer
from workers.playground.graph_world import GraphWorld

EXPECTED = {
    "fbmsgr_error_613_rate_limit.json": GraphThrottled,
    "issue_error_4_compact_wire.json": GraphThrottled,
    "issue_error_4_escaped_slash_fbtrace.json": GraphThrottled,
    "issue_error_4_pretty.json": GraphThrottled,
    "fbmsgr_error_190_invalid_oauth_token.json": GraphTokenInvalid,
    "official_graph_error_190_460.json": GraphTokenInvalid,
    "official_messenger_error_190_1234567.json": GraphTokenInvalid,
    "restfb_error_190_460_docs_example.json": GraphTokenInvalid,
    "restfb_error_1_is_transient.json": GraphRetryable,
    "fbmsgr_error_1200_temporary_send_failure.json": GraphRetryable,
    "issue_error_100_33_IGApiException_object_not_exist.json": GraphPermanent,
    "issue_error_100_conversation_not_exist_GraphMethodException.json": GraphPermanent,
    "pyfb_error_100_ppca_requires_appsecret_proof.json": GraphPermanent,
    "fbmsgr_error_10_2018065_outside_window.json": GraphPermanent,
    "fbmsgr_error_200_1545041_message_not_sent.json": GraphPermanent,
    "fbmsgr_error_230_requires_pages_messaging.json": GraphPermanent,
    "restfb_ig_error_IGApiException_2500.json": GraphPermanent,
}


@pytest.mark.parametrize("name, expected", EXPECTED.items())
def test_real_error_bodies_are_classified_by_code(name, expected):
    body = json.loads((FIXTURES / "graph" / name).read_bytes())
    error = classify(400, body)
    assert type(error) is expected
    assert error.code == body["error"]["code"]


def test_status_alone_decides_only_without_an_error_body():
    assert isinstance(classify(502, None), GraphRetryable)
    assert isinstance(classify(404, None), GraphPermanent)
    assert isinstance(classify(500, {"error": {"code": 100, "message": "x"}}), GraphRetryable)


def test_errors_pickle_across_processes():
    import pickle

    error = GraphThrottled("slow down", 613, None, retry_after=120.0)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.code, copy.retry_after) == (GraphThrottled, 613, 120.0)
    throttled = classify(400, {"error": {"code": 613}})
    assert isinstance(throttled, GraphThrottled) and throttled.retry_after == 0


def test_business_use_case_usage_header_sets_the_wait():
    header = json.dumps({"112": [{"type": "messenger", "call_count": 40, "total_cputime": 10,
                                  "total_time": 10, "estimated_time_to_regain_access": 3}]})
    assert usage_backoff({"X-Business-Use-Case-Usage": header}) == 180
    calm = json.dumps({"112": [{"type": "messenger", "call_count": 40,
                                "estimated_time_to_regain_access": 0}]})
    assert usage_backoff({"X-Business-Use-Case-Usage": calm}) == 0
    assert usage_backoff({"X-App-Usage": '{"call_count": 95, "total_time": 1, "total_cputime": 1}'}) > 0
    assert usage_backoff({"X-App-Usage": "not json"}) == 0


def test_appsecret_proof_is_hmac_of_token():
    import hashlib
    import hmac

    expected = hmac.new(b"secret", b"token", hashlib.sha256).hexdigest()
    assert appsecret_proof("secret", "token") == expected
    assert appsecret_proof("secret", "token") != appsecret_proof("other", "token")


def test_client_over_http_maps_answers_to_errors():
    world = GraphWorld(app_secret="app-secret")
    world.add_account("P1", "good")
    world.add_message("P1", "messenger", "U1", "m1", text="hi")
    with FakeGraphServer(world) as server:
        client = GraphClient(server.url, "v27.0", app_secret="app-secret")
        body, backoff = client.get("m1", token="good", params={"fields": "id,message"})
        assert body["message"] == "hi" and backoff == 0
        with pytest.raises(GraphTokenInvalid):
            client.get("m1", token="bad")
        with pytest.raises(GraphPermanent, match="appsecret_proof"):
            GraphClient(server.url, "v27.0").get("m1", token="good")
    with pytest.raises(GraphRetryable):
        GraphClient(server.url, "v27.0", timeout=1).get("m1", token="good")  # server is gone


def test_an_error_keeps_what_meta_support_asks_for():
    """Status, code, subcode and fbtrace_id survive classification and pickling; the log phrase
    names them and never the message."""
    import pickle

    body = {"error": {"message": "secret-ish detail", "code": 100, "error_subcode": 2018278,
                      "fbtrace_id": "AbCdEf123"}}
    error = pickle.loads(pickle.dumps(classify(400, body)))
    assert (type(error), error.status, error.code, error.subcode, error.fbtrace_id) == (
        GraphPermanent, 400, 100, 2018278, "AbCdEf123")
    assert error.where == "HTTP 400 code 100/2018278 fbtrace_id AbCdEf123"
    assert "secret-ish" not in error.where
    throttled = pickle.loads(pickle.dumps(classify(400, {"error": {"code": 613, "fbtrace_id": "T"}}, 60)))
    assert (throttled.fbtrace_id, throttled.retry_after, throttled.status) == ("T", 60, 400)
    assert classify(502, None).where == "HTTP 502"


@pytest.mark.parametrize("body, items, after", [
    ({"data": [{"id": "a"}, {"x": 1}], "paging": {"cursors": {"after": "C"}, "next": "https://n"}},
     [{"id": "a"}, {"x": 1}], "C"),
    ({"data": [{"id": "a"}], "paging": {"cursors": {"after": "C"}}}, [{"id": "a"}], None),  # last page
    ({"data": "nope", "paging": {"next": "https://n", "cursors": "bad"}}, [], None),
    ({"data": [1, None, "s", {"id": "b"}], "paging": {"next": "u", "cursors": {"after": 7}}},
     [{"id": "b"}], None),
    (None, [], None),
    ("text", [], None),
])
def test_every_reader_reads_a_page_the_same_way(body, items, after):
    page = Page.of(body)
    assert (page.items, page.after) == (items, after)
    assert page.nodes == [item for item in items if item.get("id")]
