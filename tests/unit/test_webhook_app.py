"""The HTTP contract of the webhook endpoints, through Flask's test client (the inbox is real SQLite)."""

import dataclasses
import sqlite3

import pytest

from tests.harness import FIXTURES, SECRET, VERIFY_TOKEN
from webhook_app import create_app
from webhook_app.signature import sign
from workers.runtime.config import settings_from_dict


@pytest.fixture()
def app(tmp_path):
    settings = settings_from_dict({
        "meta": {"app_secrets": [SECRET, "instagram-secret"], "verify_token": VERIFY_TOKEN},
        "queue": {"data_dir": str(tmp_path)}, "web": {"max_body_bytes": 4096}}, env={})
    return create_app(settings, start_relay=False)


def _post(client, body: bytes, secret: str | None = SECRET, **headers):
    if secret:
        headers["X-Hub-Signature-256"] = sign(secret, body)
    return client.post("/webhook", data=body, headers=headers, content_type="application/json")


def _recorded(app) -> list[bytes]:
    return [d.body for d in app.extensions["inbox_relay"].inbox.list()]


def test_handshake(app):
    client = app.test_client()
    ok = client.get("/webhook", query_string={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                              "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.data == b"1158201444" and ok.mimetype == "text/plain"
    for query in ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
                  {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"}, {}):
        assert client.get("/webhook", query_string=query).status_code == 403


def test_signed_delivery_is_recorded_byte_for_byte(app):
    body = (FIXTURES / "webhooks" / "m4j_template_echo_receipt_escaped_slashes.json").read_bytes()
    response = _post(app.test_client(), body)
    assert response.status_code == 200
    assert _recorded(app) == [body]


@pytest.mark.parametrize("header, kept", [
    ({"Facebook-API-Version": "v27.0"}, "v27.0"), ({}, None),
    ({"Facebook-API-Version": "v27.0" * 10}, None), ({"Facebook-API-Version": "v27\x01"}, None),
], ids=["sent", "absent", "too-long", "control-character"])
def test_the_api_version_header_is_recorded_with_the_delivery(app, header, kept):
    body = (FIXTURES / "webhooks" / "botman_text.json").read_bytes()
    assert _post(app.test_client(), body, **header).status_code == 200
    [delivery] = app.extensions["inbox_relay"].inbox.list()
    assert (delivery.body, delivery.api_version) == (body, kept)


def test_second_secret_is_accepted(app):
    body = (FIXTURES / "webhooks" / "genies_text_unicode_escaped.json").read_bytes()
    assert _post(app.test_client(), body, secret="instagram-secret").status_code == 200


@pytest.mark.parametrize("secret", [None, "wrong-secret"])
def test_bad_signature_is_403_and_nothing_recorded(app, secret):
    body = (FIXTURES / "webhooks" / "botman_text.json").read_bytes()
    assert _post(app.test_client(), body, secret=secret).status_code == 403
    assert _recorded(app) == []


def test_oversize_is_413(app):
    body = b'{"object":"page","entry":[' + b" " * 5000 + b"]}"
    assert _post(app.test_client(), body).status_code == 413
    assert _recorded(app) == []


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"object":"page"}', b'{"entry":{}}', b"\xff\xfe"])
def test_signed_but_malformed_is_400(app, body):
    response = _post(app.test_client(), body)
    assert response.status_code == 400 and response.is_json
    assert _recorded(app) == []


def test_unknown_object_is_still_accepted(app):
    body = (FIXTURES / "signatures" / "pywa_whatsapp_real_signed_body.bin").read_bytes()
    assert _post(app.test_client(), body).status_code == 200
    assert _recorded(app) == [body]


def test_inbox_failure_is_503(app, monkeypatch):
    def broken(*_args, **_kwargs):
        raise sqlite3.OperationalError("disk I/O error")
    state = app.extensions["inbox_relay"]
    monkeypatch.setitem(app.extensions, "inbox_relay", dataclasses.replace(state, record=broken))
    body = (FIXTURES / "webhooks" / "botman_text.json").read_bytes()
    assert _post(app.test_client(), body).status_code == 503


def test_unexpected_failure_is_503_not_500(app, monkeypatch):
    monkeypatch.setattr("webhook_app.routes.envelope_problem", lambda body: 1 / 0)
    body = (FIXTURES / "webhooks" / "botman_text.json").read_bytes()
    assert _post(app.test_client(), body).status_code == 503


def test_healthz_and_unknown_routes(app):
    client = app.test_client()
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json["status"] == "ok"
    assert client.get("/nope").status_code == 404
    assert client.put("/webhook").status_code == 405


@pytest.mark.parametrize("body, problem", [
    (b'{"entry": [' + b"[" * 2000 + b"]" * 2000 + b"]}", "nests too deep"),
    (b'{"entry": [' + b"[" * 100 + b"]" * 100 + b"]}", "deeper than 64"),
    (b'{"entry": ["\xed\xa0\x80"]}', "not UTF-8"),
    (b'{"entry": ["\xff"]}', "not UTF-8"),
])
def test_signed_bodies_that_can_never_be_read_are_400(app, body, problem):
    response = _post(app.test_client(), body)
    assert response.status_code == 400 and problem in response.json["error"]
    assert _recorded(app) == []


def test_an_escaped_lone_surrogate_is_valid_json_and_accepted(app):
    body = b'{"object": "page", "entry": [{"id": "\\ud800", "messaging": []}]}'
    assert _post(app.test_client(), body).status_code == 200 and _recorded(app) == [body]


def test_an_empty_verify_token_stops_start_up():
    from workers.errors import ConfigError

    with pytest.raises(ConfigError, match=r"meta\.verify_token"):
        settings_from_dict({"meta": {"app_secrets": ["s"], "verify_token": ""}}, env={})
    with pytest.raises(ConfigError, match=r"meta\.app_secrets"):
        settings_from_dict({"meta": {"app_secrets": [""], "verify_token": "t"}}, env={})
