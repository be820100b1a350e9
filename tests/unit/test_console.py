"""The web console in-process (Flask's test client): the login gate, the session cookie, CSRF,
the security headers, escaping of strangers' text, the events list and its cursor, replay."""

from __future__ import annotations

import logging
import re
import time

import pytest

from tests.console_fixtures import (
    HOSTILE,
    SCRIPT,
    TOKEN,
    console_settings,
    csrf_of,
    handlerless_runtime,
    log_in,
    seeded_journal,
)
from webhook_app.console import create_app
from webhook_app.console.auth import MAX_FAILURES
from workers import environment
from workers.connect.template import render_config
from workers.errors import ConfigError
from workers.runtime.config import settings_from_dict

PAGES = ["/console/", "/console/events", "/console/events/evt_0900"]


@pytest.fixture
def journal(tmp_path):
    log = seeded_journal(tmp_path)
    yield log
    log.close()


@pytest.fixture
def app(tmp_path, journal, store):
    built = create_app(console_settings(tmp_path), journal=journal, store=lambda: store,
                       runtime=handlerless_runtime)
    built.config["TESTING"] = True
    return built


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(client):
    assert log_in(client).status_code == 303
    return client


@pytest.mark.parametrize("path", PAGES)
def test_every_page_but_login_sends_a_visitor_without_a_session_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/console/login")


def test_a_post_without_a_session_goes_to_login_and_does_nothing(client):
    response = client.post("/console/events/evt_0900/replay", data={"handler": "crm"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/console/login")


def test_the_right_token_logs_in_and_the_pages_show(session):
    for path in PAGES:
        assert session.get(path).status_code == 200, path


def test_a_wrong_token_is_refused_and_leaves_no_session(client):
    response = log_in(client, "not-the-token")
    assert response.status_code == 401 and "not the console token" in response.text
    assert client.get("/console/").status_code == 303


def test_failed_logins_beyond_the_limit_are_refused_with_429_even_with_the_right_token(client):
    for _ in range(MAX_FAILURES):
        assert log_in(client, "wrong").status_code == 401
    assert log_in(client, "wrong").status_code == 429
    assert log_in(client).status_code == 429
    assert client.get("/console/").status_code == 303


def test_the_limit_counts_per_client(client):
    for _ in range(MAX_FAILURES):
        log_in(client, "wrong")
    other = {"environ_base": {"REMOTE_ADDR": "10.0.0.2"}}
    page = client.get("/console/login", **other)
    response = client.post("/console/login", data={"token": TOKEN, "csrf_token": csrf_of(page.text)},
                           **other)
    assert response.status_code == 303


def _session_cookie(response) -> str:
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("inbox_relay_console=")]
    return cookie


def test_the_session_cookie_is_httponly_strict_and_expires_in_8_hours(client):
    cookie = _session_cookie(log_in(client))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP (an SSH tunnel): a Secure cookie would never return
    expires = re.search(r"Expires=([^;]+)", cookie)
    assert expires
    from email.utils import parsedate_to_datetime
    hours = (parsedate_to_datetime(expires[1]).timestamp() - time.time()) / 3600
    assert 7.9 < hours <= 8.0


def test_the_cookie_is_secure_behind_an_https_proxy(client):
    cookie = _session_cookie(log_in(client, **{"X-Forwarded-Proto": "https"}))
    assert "Secure" in cookie


def test_a_session_older_than_8_hours_goes_back_to_login(session):
    with session.session_transaction() as kept:
        kept["logged_in_at"] = time.time() - 8 * 3600 - 1
    assert session.get("/console/").status_code == 303


def test_a_post_without_the_csrf_token_or_with_a_wrong_one_is_refused(session):
    assert session.post("/console/events/evt_0900/replay", data={"handler": "crm"}).status_code == 403
    assert session.post("/console/events/evt_0900/replay",
                        data={"handler": "crm", "csrf_token": "forged"}).status_code == 403
    assert session.post("/console/logout").status_code == 403
    assert session.get("/console/").status_code == 200  # still logged in


def test_the_login_form_needs_its_csrf_token_too(client):
    assert client.post("/console/login", data={"token": TOKEN}).status_code == 403


def test_logout_ends_the_session(session):
    page = session.get("/console/")
    response = session.post("/console/logout", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    assert session.get("/console/").status_code == 303


@pytest.mark.parametrize("path", ["/console/login", *PAGES])
def test_every_page_has_a_strict_csp_and_no_inline_script_or_style(session, path):
    response = session.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'self'") and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script" not in response.text and "style=" not in response.text
    assert "onerror=" not in response.text.replace("onerror=alert(1)&gt;", "")


@pytest.mark.parametrize(("event_id", "text"), [("evt_0900", HOSTILE), ("evt_0901", SCRIPT)])
def test_a_hostile_message_shows_as_text(session, event_id, text):
    page = session.get(f"/console/events/{event_id}").text
    assert text not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page or "&lt;script&gt;alert(" in page


def test_the_token_is_never_logged_nor_put_in_a_url(client, caplog):
    caplog.set_level(logging.DEBUG)
    log_in(client, TOKEN + "-typo")
    response = log_in(client)
    assert TOKEN not in caplog.text and TOKEN not in response.headers.get("Location", "")
    assert 'method="post"' in client.get("/console/login").text


def test_the_events_list_filters_by_the_cli_names_newest_first(session):
    page = session.get("/console/events?outcome=dead_letter").text
    assert "evt_0000" in page and "evt_0900" not in page
    page = session.get("/console/events?mid=m_901&kind=message&platform=messenger").text
    assert re.findall(r"evt_\d{4}", page) == ["evt_0901"] * 2  # the link's text and its href


def test_a_bad_filter_is_a_400_that_names_it(session):
    response = session.get("/console/events?outcome=sideways")
    assert response.status_code == 400 and "outcome:" in response.text


def test_the_next_link_pages_through_every_event_once_keeping_the_filters(session):
    url, seen = "/console/events?limit=2&kind=message", []
    for _ in range(10):
        page = session.get(url).text
        seen += list(dict.fromkeys(re.findall(r'href="/console/events/(evt_\d{4})"', page)))
        found = re.search(r'href="([^"]+)" rel="next"', page)
        if not found:
            break
        url = found[1].replace("&amp;", "&")
        assert "kind=message" in url and "limit=2" in url
    assert sorted(seen) == ["evt_0000", "evt_0001", "evt_0002", "evt_0900", "evt_0901"]
    assert len(seen) == 5


def test_the_overview_shows_accounts_handlers_and_recent_failures(session):
    page = session.get("/console/").text
    assert "P1" in page and "crm" in page and "evt_0000" in page


def test_replay_to_an_unknown_handler_says_so_on_the_event_page(session):
    page = session.get("/console/events/evt_0900")
    response = session.post("/console/events/evt_0900/replay",
                            data={"handler": "nope", "csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    assert "handler &#39;nope&#39; is not configured" in session.get(response.headers["Location"]).text


def test_an_unknown_event_is_404(session):
    assert session.get("/console/events/evt_missing").status_code == 404


def test_console_settings_default_to_localhost_and_take_the_token_from_the_environment(tmp_path):
    doc = {"meta": {"app_secrets": ["s"], "verify_token": "v"}}
    assert settings_from_dict(doc, env={}).console.listen == "127.0.0.1:8001"
    assert not settings_from_dict(doc, env={}).console.enabled
    from_env = settings_from_dict(doc, env={environment.CONSOLE_TOKEN: "t0k"}).console
    assert from_env.token == "t0k" and from_env.enabled
    off = settings_from_dict({**doc, "console": {"listen": "off", "token": "x"}}, env={}).console
    assert not off.enabled
    with pytest.raises(ConfigError, match=r"console\.listen"):
        settings_from_dict({**doc, "console": {"listen": "8001"}}, env={})


def test_without_a_token_there_is_no_console(tmp_path):
    settings = settings_from_dict({"meta": {"app_secrets": ["s"], "verify_token": "v"}}, env={})
    with pytest.raises(ConfigError, match="token"):
        create_app(settings)


def test_init_writes_a_random_console_token():
    import tomllib

    first, second = (tomllib.loads(render_config([]))["console"] for _ in range(2))
    assert first["listen"] == "127.0.0.1:8001"
    assert len(first["token"]) >= 32 and first["token"] != second["token"]


def test_run_serves_the_console_on_its_own_port_only_with_a_token(tmp_path):
    import click

    from workers.cli.console import console_plan
    from workers.runtime.supervisor import console_command

    settings = console_settings(tmp_path)
    assert console_plan(settings, 8000) == ("127.0.0.1", 8001)
    assert "127.0.0.1:8001" in console_command("127.0.0.1", 8001)
    with pytest.raises(click.ClickException, match="webhook's port"):
        console_plan(settings, 8001)
    untokened = settings.model_copy(update={"console": settings.console.model_copy(update={"token": ""})})
    assert console_plan(untokened, 8000) is None
