"""Dead-letter and delivery administration, on the machine's real Redis and a real SQLite inbox."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
import redis
from celery import _state as celery_state
from click.testing import CliRunner

from tests.harness import REDIS, in_process_runtime, present
from workers.cli import dead_letters as cli_admin
from workers.cli import deliveries as cli_deliveries
from workers.cli import status as cli_status
from workers.cli.common import Duration
from workers.crypto import Codec
from workers.delivery import dead_letters as admin
from workers.delivery.drain import deliver_one, drain
from workers.delivery.plugins import LoadedHandler
from workers.errors import AdminError, HandlerRejected
from workers.inbox import deliveries
from workers.inbox.database import Inbox
from workers.ingest.parse import parse_envelope
from workers.records import DeadLetter, DeliveryQueue, Event
from workers.runtime.celery_setup import QUEUE, create_celery
from workers.runtime.config import settings_from_dict
from workers.settings import HandlerConfig
from workers.state import Store

TEXT_MARKER = "PRIVATE-TEXT-7c31"


def make_event(n: int, *, kind: str = "message", account: str = "111") -> Event:
    """A distinct event of `kind` under `account`; message events carry TEXT_MARKER."""
    item = {"sender": {"id": f"9{n}"}, "recipient": {"id": account}, "timestamp": 1700000000000 + n}
    if kind == "message":
        item["message"] = {"mid": f"m_{n}", "text": TEXT_MARKER}
    else:
        item["reaction"] = {"mid": f"m_{n}", "action": "react", "reaction": "love"}
    envelope = {"object": "page", "entry": [{"id": account, "time": 1, "messaging": [item]}]}
    event = parse_envelope(envelope)[0]
    assert event.kind == kind
    return event.replace(hydration="not_applicable")


class Refuser:
    """A handler that refuses everything, so that deliver.py writes real dead letters."""

    def __init__(self, name: str):
        self.name = name

    def handle(self, event: Event) -> None:
        raise HandlerRejected("refused for the test")


def dead_letter(store: Store, handler: str, event: Event) -> None:
    """Dead-letter `event` for `handler` through the real delivery code."""
    config = HandlerConfig(type="test", name=handler, max_attempts=8, max_age=3600.0)
    queue = DeliveryQueue.of(handler, event)
    store.queues.enqueue(queue.name, event.id, event.to_dict(), score=event.timestamp or 0)
    assert deliver_one(store, LoadedHandler(Refuser(handler), config), queue, event.to_dict()) is None


@pytest.fixture
def prefix():
    prefix = f"test-admin-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


@pytest.fixture
def store(prefix):
    return Store(REDIS, prefix=prefix)


@pytest.fixture
def rt(tmp_path, store, prefix):
    """A Runtime with handlers 'a' and 'b' (jsonl) whose drain tasks go to a prefixed Celery queue."""
    settings = settings_from_dict({
        "meta": {"app_secrets": ["s"], "verify_token": "t"},
        "queue": {"broker_url": REDIS, "data_dir": str(tmp_path)},
        "handlers": [{"type": "jsonl", "name": name, "path": str(tmp_path / f"{name}.jsonl")}
                     for name in ("a", "b")]}, env={})
    app = create_celery(settings)
    app.conf.broker_transport_options = {**app.conf.broker_transport_options,
                                         "global_keyprefix": f"{prefix}-celery:"}
    previous = celery_state._tls.current_app  # type: ignore[attr-defined]  # private, not in celery-types
    app.set_current()
    yield in_process_runtime(store, settings, app.send_task)
    celery_state._set_current_app(previous)  # type: ignore[attr-defined]  # private, not in celery-types


def published_tasks(prefix: str) -> list[dict]:
    """The task messages Celery put on the broker queue, oldest first."""
    client = redis.Redis.from_url(REDIS)
    messages = [json.loads(m) for m in client.lrange(f"{prefix}-celery:{QUEUE}", 0, -1)]
    return [{"task": m["headers"]["task"], "args": json.loads(base64.b64decode(m["body"]))[0]}
            for m in reversed(messages)]


@pytest.fixture
def letters(store):
    """Four dead letters: handler a/b, kind message/reaction, accounts 111/222."""
    events = [make_event(1), make_event(2, kind="reaction"), make_event(3, account="222"), make_event(4)]
    for handler, event in zip(("a", "a", "a", "b"), events, strict=True):
        dead_letter(store, handler, event)
    return events


# -- dead letters -----------------------------------------------------------------------------
def test_list_filters(store, letters):
    ids = lambda where, **kw: [(letter.handler, letter.event_id)
                               for letter in admin.list_dead_letters(store.dead_letters, where, **kw)]
    e1, e2, e3, e4 = (e.id for e in letters)
    assert ids(admin.LetterFilter()) == [("a", e1), ("a", e2), ("a", e3), ("b", e4)]
    assert ids(admin.LetterFilter(handler="b")) == [("b", e4)]
    assert ids(admin.LetterFilter(kind="reaction")) == [("a", e2)]
    assert ids(admin.LetterFilter(account_id="222")) == [("a", e3)]
    assert ids(admin.LetterFilter(handler="a", kind="message", account_id="111")) == [("a", e1)]
    later = time.time() + 3600
    assert len(ids(admin.LetterFilter(older_than=1800), now=later)) == 4
    assert ids(admin.LetterFilter(older_than=1800)) == []
    assert ids(admin.LetterFilter(newer_than=1800), now=later) == []
    assert len(ids(admin.LetterFilter(newer_than=1800))) == 4


def test_a_letter_records_what_failed(store, letters):
    letter = admin.get_dead_letter(store.dead_letters, "a", letters[0].id)
    assert letter.event == letters[0].to_dict()
    assert letter.attempts == 1 and "HandlerRejected" in letter.error
    with pytest.raises(AdminError, match="no dead letter"):
        admin.get_dead_letter(store.dead_letters, "b", letters[0].id)


def test_summary_hides_text_unless_asked(store, letters):
    letter = admin.get_dead_letter(store.dead_letters, "a", letters[0].id)
    assert TEXT_MARKER in json.dumps(letter.to_dict())
    assert TEXT_MARKER not in json.dumps(admin.letter_summary(letter))
    assert admin.letter_summary(letter)["event"]["id"] == letters[0].id
    assert TEXT_MARKER in json.dumps(admin.letter_summary(letter, with_body=True))


def test_replay_requeues_for_that_handler_only(rt, store, prefix, letters):
    event = letters[0]
    store.progress.mark_done("a", event.id)  # as if it had succeeded once before: a replay must not skip it
    queue = admin.replay_dead_letter(rt, admin.get_dead_letter(store.dead_letters, "a", event.id))
    assert queue == DeliveryQueue.of("a", event)
    assert [r["id"] for r in store.queues.peek(queue.name)] == [event.id]
    assert not store.progress.is_done("a", event.id)
    assert store.flags.is_claimed(queue.name)
    assert published_tasks(prefix) == [{"task": "inbox_relay.deliver", "args": [queue.name]}]
    remaining = [(letter.handler, letter.event_id) for letter in admin.list_dead_letters(store.dead_letters)]
    assert ("a", event.id) not in remaining and len(remaining) == 3
    assert store.queues.length(DeliveryQueue.of("b", event).name) == 0
    # The queued event now reaches the handler as any other would.
    assert drain(store, rt.handlers["a"], queue) is None
    lines = (rt.settings.data_dir / "a.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [event.id]
    assert (rt.settings.data_dir / "b.jsonl").read_text() == ""


def test_replay_with_filter(rt, store, prefix, letters):
    assert admin.replay_dead_letters(rt, admin.LetterFilter(handler="a", kind="message")) == 2
    left = {(letter.handler, letter.event_id) for letter in admin.list_dead_letters(store.dead_letters)}
    assert left == {("a", letters[1].id), ("b", letters[3].id)}
    assert len(published_tasks(prefix)) == 2


def test_replay_refuses_an_unconfigured_handler(rt, store, letters):
    dead_letter(store, "gone", letters[0])
    with pytest.raises(AdminError, match="gone"):
        admin.replay_dead_letters(rt, admin.LetterFilter())
    assert len(admin.list_dead_letters(store.dead_letters)) == 5  # nothing replayed, nothing removed
    with pytest.raises(AdminError, match="not configured"):
        admin.replay_dead_letter(rt, admin.get_dead_letter(store.dead_letters, "gone", letters[0].id))
    assert admin.get_dead_letter(store.dead_letters, "gone", letters[0].id)


def test_remove_selected_letters(store, letters):
    purge = lambda where: admin.remove_dead_letters(
        store.dead_letters, admin.list_dead_letters(store.dead_letters, where))
    assert purge(admin.LetterFilter(account_id="222")) == 1
    assert purge(admin.LetterFilter(account_id="222")) == 0
    assert [letter.event_id for letter in admin.list_dead_letters(store.dead_letters)] == [
        letters[0].id, letters[1].id, letters[3].id]
    assert purge(admin.LetterFilter()) == 3
    assert admin.list_dead_letters(store.dead_letters) == []


# -- deliveries -------------------------------------------------------------------------------
def envelope_bytes(entries: int, obj: str = "page") -> bytes:
    return json.dumps({"object": obj, "entry": [
        {"id": "111", "time": 1, "messaging": [{"message": {"mid": f"m{i}", "text": TEXT_MARKER}}]}
        for i in range(entries)]}).encode()


def test_dead_letters_older_than_retention_go_when_a_new_one_comes(prefix):
    """A handler failing for weeks cannot fill Redis: letters are kept for `queue.retention`."""
    store = Store(REDIS, prefix=prefix, retention=3600)
    now = time.time()
    for age, event in ((7200, make_event(1)), (1800, make_event(2))):
        store.dead_letters.add(DeadLetter(handler="a", event=event.to_dict(), attempts=1, error="E",
                                          first_failed_at=now - age, failed_at=now - age))
    assert [letter.event_id for letter in store.dead_letters.all()] == [make_event(2).id]
    client = redis.Redis.from_url(REDIS)
    assert not client.exists(f"{prefix}:dead:a:{make_event(1).id}")
    unbounded = Store(REDIS, prefix=prefix)
    unbounded.dead_letters.add(DeadLetter(handler="b", event=make_event(3).to_dict(), attempts=1,
                                          error="E", first_failed_at=0, failed_at=now - 99999))
    assert unbounded.dead_letters.count() == 2



def test_list_deliveries_newest_first_with_shape(tmp_path):
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    first = inbox.append(envelope_bytes(2))
    second = inbox.append(envelope_bytes(1, "instagram"))
    third = inbox.append(b"not json")
    inbox.mark_published([first])
    infos = deliveries.list_deliveries(inbox, Codec())
    assert [i.id for i in infos] == [third, second, first]
    assert [(i.object, i.entries) for i in infos] == [(None, None), ("instagram", 1), ("page", 2)]
    assert [i.published for i in infos] == [False, False, True]
    assert infos[2].size == len(envelope_bytes(2)) and all(i.body is None for i in infos)
    assert deliveries.list_deliveries(inbox, Codec(), limit=1, with_body=True)[0].body == b"not json"


def test_replay_delivery_appends_it_forced(tmp_path):
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    original = inbox.append(envelope_bytes(3))
    inbox.mark_published([original])
    new_id = deliveries.replay_delivery(inbox, original)
    assert new_id != original
    replayed = present(inbox.get(new_id))
    assert replayed.body == envelope_bytes(3) and replayed.force and replayed.published_at is None
    assert [d.id for d in inbox.claim("test")] == [new_id]
    with pytest.raises(AdminError, match="no delivery 999"):
        deliveries.replay_delivery(inbox, 999)



def test_a_failed_delivery_replayed_no_longer_counts_as_failed_unless_its_replay_fails(tmp_path):
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    failed = inbox.append(envelope_bytes(4))
    inbox.mark_failed([(failed, "ValueError: bad")])
    assert inbox.counts()["failed"] == 1 and [d.id for d in inbox.list(failed=True)] == [failed]
    replay = deliveries.replay_delivery(inbox, failed)
    assert inbox.counts()["failed"] == 0 and inbox.list(failed=True) == []
    inbox.mark_failed([(replay, "ValueError: bad again")])
    assert [d.id for d in inbox.list(failed=True)] == [replay]

# -- the command line -------------------------------------------------------------------------
@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f'[meta]\napp_secrets = ["s"]\nverify_token = "t"\n[queue]\n'
                    f'broker_url = "{REDIS}"\ndata_dir = "data"\n'
                    '[[handlers]]\ntype = "jsonl"\nname = "a"\npath = "a.jsonl"\n')
    return str(path)


def invoke(*args, config: str, input: str | None = None):
    return CliRunner().invoke(cli_admin.dead_letters if args[0] == "dl" else cli_deliveries.deliveries,
                              [*args[1:], "--config", config], input=input, catch_exceptions=False)


def test_cli_deliveries(config, tmp_path):
    missing = invoke("dv", "list", config=config)
    assert missing.exit_code == 1 and "no inbox at" in missing.output
    inbox = Inbox(tmp_path / "data" / "inbox.sqlite3")
    delivery_id = inbox.append(envelope_bytes(2))
    table = invoke("dv", "list", config=config)
    assert table.exit_code == 0 and TEXT_MARKER not in table.output
    assert table.output.splitlines()[0].split() == ["ID", "RECEIVED", "BYTES", "PUBLISHED", "FORCED",
                                                    "OBJECT", "ENTRIES", "FAILED"]
    assert table.output.splitlines()[2].split()[-2:] == ["page", "2"]
    assert TEXT_MARKER in invoke("dv", "list", "--show-body", config=config).output
    [row] = json.loads(invoke("dv", "list", "--json", config=config).output)
    assert row["id"] == delivery_id and row["entries"] == 2 and "body" not in row
    replayed = invoke("dv", "replay", str(delivery_id), config=config)
    assert replayed.exit_code == 0 and present(inbox.get(delivery_id + 1)).force
    assert invoke("dv", "replay", "999", config=config).exit_code == 1


def test_cli_dead_letters(config, store, letters, monkeypatch):
    monkeypatch.setattr(cli_admin, "store_or_exit", lambda settings: store)
    table = invoke("dl", "list", "--handler", "a", config=config)
    assert table.exit_code == 0 and "3 dead letter(s)" in table.output
    assert TEXT_MARKER not in table.output
    as_json = json.loads(invoke("dl", "list", "--kind", "reaction", "--json", config=config).output)
    assert [letter["event"]["id"] for letter in as_json] == [letters[1].id]
    shown = invoke("dl", "show", "a", letters[0].id, config=config)
    assert letters[0].id in shown.output and TEXT_MARKER not in shown.output
    assert TEXT_MARKER in invoke("dl", "show", "a", letters[0].id, "--show-body", config=config).output
    assert invoke("dl", "show", "b", letters[0].id, config=config).exit_code == 1
    assert invoke("dl", "replay", config=config).exit_code == 2  # says which letters, or nothing
    assert invoke("dl", "purge", "a", config=config).exit_code == 2
    kept = invoke("dl", "purge", "--account", "222", config=config, input="n\n")
    assert kept.exit_code == 1 and len(admin.list_dead_letters(store.dead_letters)) == 4
    purged = invoke("dl", "purge", "--account", "222", config=config, input="y\n")
    assert "purged 1" in purged.output and len(admin.list_dead_letters(store.dead_letters)) == 3
    assert "purged 1" in invoke("dl", "purge", "--handler", "b", "--yes", config=config).output
    assert "purged 1" in invoke("dl", "purge", "a", letters[0].id, "--yes", config=config).output
    assert "purged 1" in invoke("dl", "purge", "--all", "--yes", config=config).output
    assert admin.list_dead_letters(store.dead_letters) == []


def test_cli_replay_one_letter(config, rt, store, prefix, letters, monkeypatch):
    monkeypatch.setattr(cli_admin, "_runtime", lambda settings: rt)
    result = invoke("dl", "replay", "a", letters[0].id, config=config)
    assert result.exit_code == 0 and "replayed 1" in result.output
    assert store.queues.length(DeliveryQueue.of("a", letters[0]).name) == 1
    assert len(published_tasks(prefix)) == 1
    assert invoke("dl", "replay", "--older-than", "1h", config=config).output.strip() == \
        "replayed 0 dead letter(s)"
    result = invoke("dl", "replay", "--handler", "a", "--kind", "reaction", config=config)
    assert "replayed 1" in result.output and len(published_tasks(prefix)) == 2


def test_duration_option():
    duration = Duration()
    assert [duration.convert(v, None, None) for v in ("90", "90s", "15m", "2h", "1.5d")] == \
        [90, 90, 900, 7200, 129600]
    with pytest.raises(Exception, match="not a duration"):
        duration.convert("soon", None, None)


def test_cli_status_reports_paused_and_throttled_accounts(tmp_path, store, monkeypatch):
    path = tmp_path / "status.toml"
    path.write_text('[meta]\napp_secrets = ["s"]\nverify_token = "t"\n[queue]\n'
                    f'broker_url = "{REDIS}"\n'
                    '[[accounts]]\npage_id = "P1"\naccess_token = "a"\n'
                    '[[accounts]]\npage_id = "P2"\ninstagram_id = "IG2"\naccess_token = "b"\n')
    monkeypatch.setattr(cli_status, "store_or_exit", lambda settings: store)
    store.accounts.pause("P1", "fingerprint", "code 190")
    store.budgets.block_calls("P2", 30)
    [event] = parse_envelope(json.loads(envelope_bytes(1)))
    store.queues.enqueue(DeliveryQueue.of("a", event).name, event.id, event.to_dict(), score=1)
    result = CliRunner().invoke(cli_status.status, ["--config", str(path), "--json"], catch_exceptions=False)
    report = json.loads(result.output)
    p1, p2 = report["accounts"]
    assert p1["paused"] and p1["paused_reason"] == "code 190" and not p2["paused"]
    assert 25 < p2["throttled_for_seconds"] <= 30 and p2["instagram_id"] == "IG2"
    assert report["waiting"] == {"handler a": 1} and report["dead_letters"] == 0
    assert report["failed_deliveries"] == 0
    table = CliRunner().invoke(cli_status.status, ["--config", str(path)], catch_exceptions=False).output
    assert "PAUSED (code 190)" in table and "throttled for" in table and "waiting for handler a: 1" in table


def test_cli_lists_nothing_cleanly(config, store, monkeypatch):
    monkeypatch.setattr(cli_admin, "store_or_exit", lambda settings: store)
    empty = invoke("dl", "list", "--handler", "nobody", config=config)
    assert empty.exit_code == 0 and "0 dead letter(s)" in empty.output and "HANDLER" in empty.output
