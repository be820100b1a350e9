"""The console's dead letters page (Flask's test client, a real Store on the machine's Redis):
the list and its filters, strangers' text escaped, replay one, replay all and purge after a page
that shows how many, CSRF and the login gate."""

from __future__ import annotations

import re
import time

import pytest

from tests.console_fixtures import HOSTILE, SCRIPT, console_settings, csrf_of, log_in, message_event
from tests.harness import in_process_runtime
from webhook_app.console import create_app
from workers.delivery import dead_letters as admin
from workers.records import DeadLetter, DeliveryQueue, Event

HOUR = 3600.0


def letter(handler: str, event: Event, *, hours_ago: float = 0.0, error: str = "HandlerRejected: 400"
           ) -> DeadLetter:
    failed_at = time.time() - hours_ago * HOUR
    return DeadLetter(handler=handler, event=event.to_dict(), attempts=3, error=error,
                      first_failed_at=failed_at - 60, failed_at=failed_at)


@pytest.fixture
def sent():
    return []


@pytest.fixture
def app(tmp_path, store, sent):
    settings = console_settings(tmp_path)
    runtime = in_process_runtime(store, settings, lambda name, args, **kw: sent.append((name, list(args))))
    built = create_app(settings, store=lambda: store, runtime=lambda: runtime)
    built.config["TESTING"] = True
    return built


@pytest.fixture
def letters(store):
    """crm: evt_0001 (3 h ago), evt_0002 (1 h ago, its error hostile), evt_0003 (now, a reaction
    under P2); gone (no such handler): evt_0004. Message text: SCRIPT in evt_0002."""
    reaction = message_event(3).replace(kind="reaction", account_id="P2")
    made = [letter("crm", message_event(1, "secret words"), hours_ago=3),
            letter("crm", message_event(2, SCRIPT), hours_ago=1, error=f"HandlerRejected: {HOSTILE}"),
            letter("crm", reaction), letter("gone", message_event(4), hours_ago=2)]
    for one in made:
        store.dead_letters.add(one)
    return made


@pytest.fixture
def session(app):
    client = app.test_client()
    assert log_in(client).status_code == 303
    return client


def ids(html: str) -> list[str]:
    return re.findall(r'href="/console/events/(evt_\d{4})"', html)


def left(store) -> set[tuple[str, str]]:
    return {(one.handler, one.event_id) for one in admin.list_dead_letters(store.dead_letters)}


def follow(session, response) -> str:
    assert response.status_code == 303
    return session.get(response.headers["Location"]).text


def test_the_list_is_newest_first_and_filters_by_the_cli_names(session, letters):
    page = session.get("/console/dead-letters")
    assert page.status_code == 200
    assert ids(page.text) == ["evt_0003", "evt_0002", "evt_0004", "evt_0001"]
    assert "4 dead letter(s) match" in page.text and "HandlerRejected: 400" in page.text
    assert ids(session.get("/console/dead-letters?handler=crm&kind=message").text) == ["evt_0002", "evt_0001"]
    assert ids(session.get("/console/dead-letters?account=P2").text) == ["evt_0003"]
    assert ids(session.get("/console/dead-letters?older_than=90m&newer_than=150m").text) == ["evt_0004"]
    assert ids(session.get("/console/dead-letters?handler=&kind=").text) == ids(page.text)


def test_a_bad_duration_is_a_400_that_names_it(session, letters):
    response = session.get("/console/dead-letters?older_than=soon")
    assert response.status_code == 400 and "older_than:" in response.text


def test_no_message_text_and_strangers_text_is_escaped(session, letters):
    page = session.get("/console/dead-letters").text
    assert "secret words" not in page and "alert(&#39;xss&#39;)" not in page and SCRIPT not in page
    assert HOSTILE not in page and "HandlerRejected: &lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in page


def test_the_navigation_links_the_page(session):
    assert 'href="/console/dead-letters"' in session.get("/console/").text


def test_replay_one_queues_the_event_again_for_its_handler_and_removes_the_letter(session, store, sent,
                                                                                 letters):
    page = session.get("/console/dead-letters?handler=crm")
    response = session.post("/console/dead-letters/replay", data={
        "csrf_token": csrf_of(page.text), "letter_handler": "crm", "letter_event": "evt_0002",
        "handler": "crm"})
    assert response.headers["Location"].endswith("/console/dead-letters?handler=crm")
    assert "queued evt_0002 again for crm" in follow(session, response)
    assert ("crm", "evt_0002") not in left(store) and len(left(store)) == 3
    queue = DeliveryQueue.of("crm", Event.from_dict(letters[1].event)).name
    assert [item["id"] for item in store.queues.peek(queue)] == ["evt_0002"]
    assert sent == [("inbox_relay.deliver", [queue])]


def test_replay_of_a_letter_that_is_not_there_says_so(session, store, letters):
    page = session.get("/console/dead-letters")
    response = session.post("/console/dead-letters/replay", data={
        "csrf_token": csrf_of(page.text), "letter_handler": "crm", "letter_event": "evt_0999"})
    notice = follow(session, response)
    assert "no dead letter for handler &#39;crm&#39; and event &#39;evt_0999&#39;" in notice
    assert len(left(store)) == 4


def _confirm(session, path: str) -> tuple[str, dict[str, str]]:
    """The confirmation page's text and its form's fields."""
    page = session.get(path)
    assert page.status_code == 200
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    return page.text, fields


def test_replay_all_shows_the_count_then_replays_those(session, store, sent, letters):
    page, fields = _confirm(session, "/console/dead-letters/replay-all?handler=crm&kind=message")
    assert '<strong id="count">2</strong> dead letter(s) match' in page
    assert fields["count"] == "2" and fields["handler"] == "crm" and fields["kind"] == "message"
    assert "secret words" not in page and left(store) == {(x.handler, x.event_id) for x in letters}
    notice = follow(session, session.post("/console/dead-letters/replay-all", data=fields))
    assert "replayed 2 dead letter(s)" in notice
    assert left(store) == {("crm", "evt_0003"), ("gone", "evt_0004")}
    queue = DeliveryQueue.of("crm", Event.from_dict(letters[0].event)).name  # one conversation
    assert sorted(item["id"] for item in store.queues.peek(queue)) == ["evt_0001", "evt_0002"]
    assert ("inbox_relay.deliver", [queue]) in sent


def test_replay_all_refuses_when_another_number_matches_by_now(session, store, letters):
    _, fields = _confirm(session, "/console/dead-letters/replay-all?handler=crm")
    store.dead_letters.add(letter("crm", message_event(5)))
    notice = follow(session, session.post("/console/dead-letters/replay-all", data=fields))
    assert "4 dead letter(s) match now, not the 3 you confirmed" in notice
    assert len(left(store)) == 5


def test_replay_all_with_an_unconfigured_handler_replays_nothing_and_says_why(session, store, letters):
    _, fields = _confirm(session, "/console/dead-letters/replay-all")
    assert fields["count"] == "4"
    notice = follow(session, session.post("/console/dead-letters/replay-all", data=fields))
    assert "handler(s) gone not configured" in notice and len(left(store)) == 4


def test_purge_after_confirmation_deletes_exactly_those(session, store, letters):
    page, fields = _confirm(session, "/console/dead-letters/purge?older_than=90m")
    assert '<strong id="count">2</strong>' in page and "deleted for good" in page
    notice = follow(session, session.post("/console/dead-letters/purge", data=fields))
    assert "purged 2 dead letter(s)" in notice
    assert left(store) == {("crm", "evt_0002"), ("crm", "evt_0003")}


def test_every_post_needs_the_csrf_token(session, store, letters):
    one = {"letter_handler": "crm", "letter_event": "evt_0001"}
    for path, data in [("/console/dead-letters/replay", one),
                       ("/console/dead-letters/replay-all", {"count": "4"}),
                       ("/console/dead-letters/purge", {"count": "4"})]:
        assert session.post(path, data=data).status_code == 403
        assert session.post(path, data={**data, "csrf_token": "forged"}).status_code == 403
    assert len(left(store)) == 4


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/console/dead-letters"), ("get", "/console/dead-letters/replay-all"),
    ("get", "/console/dead-letters/purge"), ("post", "/console/dead-letters/replay"),
    ("post", "/console/dead-letters/replay-all"), ("post", "/console/dead-letters/purge")])
def test_without_a_session_every_page_and_post_goes_to_login(app, store, letters, method, path):
    response = getattr(app.test_client(), method)(path, data={"count": "4"} if method == "post" else None)
    assert response.status_code == 303 and response.headers["Location"].endswith("/console/login")
    assert len(left(store)) == 4


@pytest.mark.parametrize("path", ["/console/dead-letters", "/console/dead-letters/replay-all",
                                  "/console/dead-letters/purge"])
def test_the_pages_keep_the_strict_csp_and_no_inline_script(session, letters, path):
    response = session.get(path)
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert "<script" not in response.text and "style=" not in response.text
