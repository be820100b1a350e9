"""The event log on both of its homes: SQLite in a data_dir and the machine's PostgreSQL (a database
of each test's own). Rows go in batches, the filters of `events list`, `show`, retention, a
database that refuses writes, migrations, and the log written by routing and delivery."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
import uuid

import psycopg
import pytest

from tests.harness import SentTasks, in_process_runtime
from workers.crypto import Codec, new_key
from workers.delivery.dispatch import dispatch
from workers.delivery.drain import drain
from workers.events.database import LOG_FILE, EventLogUnavailable, open_database
from workers.events.log import Attempt, EventLog
from workers.events.queries import Filters, count_events, list_events, show_event
from workers.events.schema import MIGRATIONS
from workers.records import DeliveryQueue, Event, Kind
from workers.runtime.config import settings_from_dict

POSTGRES = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request, tmp_path):
    """Where the log lives: "" (SQLite in tmp_path) or a PostgreSQL database made for the test."""
    if request.param == "sqlite":
        yield ""
        return
    name = f"ir_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield f"{POSTGRES}/{name}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def journal(log_url, tmp_path):
    log = EventLog(lambda: open_database(log_url, tmp_path), Codec((new_key(),)))
    yield log
    log.close()


def event(n: int, *, kind: Kind = "message", mid: str | None = None, account: str = "P1") -> Event:
    return Event(id=f"evt_{n}", kind=kind, platform="messenger", account_id=account, sender_id="c1",
                 recipient_id=account, timestamp=1_700_000_000_000 + n, mid=mid or f"m_{n}",
                 conversation_id="t_1", message={"id": f"m_{n}", "message": f"secret text {n}"},
                 hydration="complete", raw={})


def test_events_and_attempts_are_written_in_one_batch_and_read_back(journal):
    journal.note_events([event(1), event(2, kind="read", mid="m_x")])
    journal.note_attempt(Attempt("evt_1", "crm", 1, "retry", error="HandlerRetryable: 503", duration_ms=12.5))
    journal.note_attempt(Attempt("evt_1", "crm", 2, "success", duration_ms=3.0))
    journal.note_attempt(Attempt("evt_2", "crm", 1, "dead_letter", error="HandlerRejected: 400"))
    assert journal.flush() and count_events(journal) == (2, 3)
    [newest, oldest] = list_events(journal, Filters())
    assert (newest["id"], oldest["id"]) in {("evt_2", "evt_1"), ("evt_1", "evt_2")}
    assert {e["id"]: e["handlers"] for e in (newest, oldest)} == {"evt_1": {"crm": "success"},
                                                                   "evt_2": {"crm": "dead_letter"}}
    shown = show_event(journal, "evt_1")
    assert shown and shown["event"]["message"]["message"] == "secret text 1"
    assert [(a["attempt"], a["outcome"]) for a in shown["attempts"]] == [(1, "retry"), (2, "success")]
    assert show_event(journal, "evt_nope") is None


def test_the_filters_of_events_list(journal):
    journal.note_events([event(1), event(2, mid="m_find"), event(3, kind="read", account="P2")])
    journal.note_attempt(Attempt("evt_1", "crm", 1, "dead_letter"))
    journal.note_attempt(Attempt("evt_1", "jsonl", 1, "success"))
    journal.note_attempt(Attempt("evt_2", "crm", 1, "retry"))
    journal.note_attempt(Attempt("evt_2", "crm", 2, "success", at=time.time() + 1))
    journal.flush()

    def ids(**filters) -> set[str]:
        return {e["id"] for e in list_events(journal, Filters(**filters))}
    assert ids(mid="m_find") == {"evt_2"} and ids(kind="read") == {"evt_3"} and ids(account="P2") == {"evt_3"}
    assert ids(outcome="dead_letter") == {"evt_1"}
    assert ids(outcome="retry") == set(), "only a handler's latest outcome counts"
    assert ids(handler="jsonl") == {"evt_1"} and ids(handler="jsonl", outcome="dead_letter") == set()
    assert ids(since=time.time() + 60) == set() and len(list_events(journal, Filters(limit=2))) == 2


def test_the_record_is_sealed_and_only_index_columns_are_plain(journal, log_url, tmp_path):
    journal.note_events([event(1)])
    journal.flush()
    [(record,)] = journal.database().query("SELECT record FROM events")
    assert "secret text" not in record and record.startswith("gAAAAA")
    if not log_url:
        assert (tmp_path / LOG_FILE).stat().st_mode & 0o077 == 0, "the log file is private"


def test_a_log_that_cannot_be_written_keeps_its_rows_for_the_next_flush(tmp_path, monkeypatch):
    import workers.events.log as events_log
    from workers.metrics import EVENT_LOG_ERRORS

    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the log's directory should be")
    opened: list[int] = []

    def open_blocked():
        opened.append(1)
        return open_database("", blocked)
    broken = EventLog(open_blocked, Codec())
    before = EVENT_LOG_ERRORS._value.get()
    broken.note_events([event(1)])
    assert broken.flush() is False and EVENT_LOG_ERRORS._value.get() == before + 1
    broken.note_events([event(2)])
    assert broken.flush() is False and opened == [1], "left alone for a while: no task end waits on it"
    monkeypatch.setattr(events_log, "RETRY_AFTER", 0.0)
    broken._quiet_until = 0.0  # its quiet time is over, and there is room again
    broken._open = lambda: open_database("", tmp_path)
    assert broken.flush() is True and count_events(broken) == (2, 0)


def test_rows_older_than_keep_are_pruned_in_batches(journal, monkeypatch):
    import workers.events.log as events_log

    monkeypatch.setattr(events_log, "PRUNE_BATCH", 7)
    journal.note_events([event(n) for n in range(30)])
    for n in range(30):
        journal.note_attempt(Attempt(f"evt_{n}", "crm", 1, "success", at=time.time() - 3600))
    journal.flush()
    assert journal.prune(time.time() + 1) == 60 and count_events(journal) == (0, 0)


def test_an_older_schema_is_brought_up_to_date_once(log_url, tmp_path):
    first = open_database(log_url, tmp_path)
    second = open_database(log_url, tmp_path)  # another process opening the same log
    assert first.query("SELECT version FROM event_log_version") == [(len(MIGRATIONS),)]
    first.close()
    second.close()


def test_a_bad_log_url_is_one_clear_line():
    with pytest.raises(EventLogUnavailable, match=r"postgresql://ir:\*\*\*@127.0.0.1:1/x: cannot connect"):
        open_database("postgresql://ir:hunter2@127.0.0.1:1/x", None)  # type: ignore[arg-type]
    with pytest.raises(EventLogUnavailable, match="expected empty"):
        open_database("mysql://x", None)  # type: ignore[arg-type]


def test_routing_and_delivery_write_the_story_of_each_event(store, tmp_path):
    settings = settings_from_dict({"meta": {"app_secrets": ["s"], "verify_token": "t"},
                                   "handlers": [{"type": "jsonl", "path": str(tmp_path / "e.jsonl")}]},
                                  env={})
    journal = EventLog(lambda: open_database("", tmp_path), Codec())
    rt = in_process_runtime(store, settings, SentTasks())
    rt = dataclasses.replace(rt, journal=journal)
    read = event(1, kind="read")
    dispatch(rt, [read])
    assert drain(rt.store, rt.handlers["jsonl"], DeliveryQueue.of("jsonl", read), journal=journal) is None
    journal.flush()
    shown = show_event(journal, read.id)
    assert shown and [(a["handler"], a["attempt"], a["outcome"]) for a in shown["attempts"]] == [
        ("jsonl", 1, "success")]
    assert shown["attempts"][0]["duration_ms"] >= 0


def test_sqlite_shares_one_file_between_processes(tmp_path):
    one = EventLog(lambda: open_database("", tmp_path), Codec())
    two = EventLog(lambda: open_database("", tmp_path), Codec())
    one.note_events([event(1)])
    two.note_events([event(2)])
    assert one.flush() and two.flush() and count_events(one) == (2, 0)
    with sqlite3.connect(tmp_path / LOG_FILE) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    one.close()
    two.close()


def test_rotate_keys_reseals_the_records_so_the_old_key_can_go(log_url, tmp_path):
    old, new = new_key(), new_key()
    before = EventLog(lambda: open_database(log_url, tmp_path), Codec((old,)))
    before.note_events([event(n) for n in range(3)])
    before.flush()
    before.close()
    rotating = EventLog(lambda: open_database(log_url, tmp_path), Codec((new, old)))
    assert rotating.reseal() == 3
    rotating.close()
    after = EventLog(lambda: open_database(log_url, tmp_path), Codec((new,)))
    shown = show_event(after, "evt_2")
    assert shown and shown["event"]["message"]["message"] == "secret text 2"
    after.close()


def test_a_replay_is_logged_before_its_delivery_with_the_next_attempt_number(store, tmp_path):
    from workers.delivery.replay import replay_event

    settings = settings_from_dict({"meta": {"app_secrets": ["s"], "verify_token": "t"},
                                   "handlers": [{"type": "jsonl", "path": str(tmp_path / "e.jsonl")}]},
                                  env={})
    journal = EventLog(lambda: open_database("", tmp_path), Codec())
    rt = dataclasses.replace(in_process_runtime(store, settings, SentTasks()), journal=journal)
    read = event(1, kind="read")
    dispatch(rt, [read])
    queue = DeliveryQueue.of("jsonl", read)
    drain(rt.store, rt.handlers["jsonl"], queue, journal=journal)
    journal.flush()
    assert replay_event(rt, read) == ["jsonl"]
    drain(rt.store, rt.handlers["jsonl"], queue, journal=journal)
    journal.flush()
    shown = show_event(journal, read.id)
    assert shown and [(a["attempt"], a["outcome"]) for a in shown["attempts"]] == [
        (1, "success"), (2, "pending"), (1, "success")]
    assert list_events(journal, Filters())[0]["handlers"] == {"jsonl": "success"}


def test_plugin_exception_text_stays_out_of_the_plain_error_column():
    from workers.errors import HandlerRejected
    from workers.events.log import error_text

    def plugin_code():  # not in workers.*: as a plugin raises it
        raise HandlerRejected("customer wrote: my card number is 4111")
    with pytest.raises(HandlerRejected) as raised:
        plugin_code()
    assert error_text(raised.value) == "HandlerRejected"
