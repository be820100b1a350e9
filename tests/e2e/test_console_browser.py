"""The console in a real headless Chromium (Debian's, driven by Playwright; never a downloaded
browser): log in through the form, list events, open a hostile one, and no page breaks its CSP."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from werkzeug.serving import make_server

from tests.console_fixtures import HOSTILE, TOKEN, console_settings, handlerless_runtime, seeded_journal
from webhook_app.console import create_app

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(apt-get install -y chromium; .ci/run installs it)")


@pytest.fixture
def console_url(tmp_path, store) -> Iterator[str]:
    """The console on a free port of 127.0.0.1, served from a thread, on a seeded event log."""
    journal = seeded_journal(tmp_path)
    app = create_app(console_settings(tmp_path), journal=journal, store=lambda: store,
                     runtime=handlerless_runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        journal.close()


@pytest.fixture
def browser_page(tmp_path):
    """A Chromium page that records console messages, page errors and dialogs."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_context().new_page()
        page.set_default_timeout(10_000)
        seen = SimpleNamespace(console=[], errors=[], dialogs=[])
        page.on("console", lambda message: seen.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: seen.errors.append(str(error)))
        page.on("dialog", lambda dialog: (seen.dialogs.append(dialog.message), dialog.dismiss()))
        page.seen = seen
        try:
            yield page
        finally:
            browser.close()


def test_log_in_list_events_and_open_a_hostile_one_as_text(console_url, browser_page, tmp_path):
    page = browser_page
    page.goto(f"{console_url}/console/events")
    assert page.url.endswith("/console/login")  # no session: the login page
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{console_url}/console/")
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

    page.click("nav >> text=Events")
    page.wait_for_url(f"{console_url}/console/events")
    assert page.locator("table.events tbody tr").count() == 5
    page.screenshot(path=str(tmp_path / "events.png"), full_page=True)

    page.click("a[href='/console/events/evt_0900']")
    page.wait_for_url(f"{console_url}/console/events/evt_0900")
    message = page.locator("#message")
    assert HOSTILE in message.inner_text()          # shown as text ...
    assert page.locator("main img").count() == 0    # ... never parsed into an element
    page.screenshot(path=str(tmp_path / "event.png"), full_page=True)

    assert page.seen.dialogs == [] and page.seen.errors == []
    violations = [line for line in page.seen.console if "Content Security Policy" in line]
    assert violations == [], violations
    assert not [line for line in page.seen.console if line.startswith("error")], page.seen.console


def test_the_csp_is_enforced_by_the_browser(console_url, browser_page):
    """The check above means something: an inline script the page tried would be refused."""
    page = browser_page
    page.goto(f"{console_url}/console/login")
    blocked = page.evaluate("""() => new Promise(resolve => {
        document.addEventListener('securitypolicyviolation', e => resolve(e.violatedDirective));
        const script = document.createElement('script');
        script.textContent = 'window.ran = true';
        document.body.appendChild(script);
        setTimeout(() => resolve(window.ran ? 'ran' : 'nothing'), 2000);
    })""")
    assert blocked.startswith("script-src")
