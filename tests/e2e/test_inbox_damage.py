"""A damaged or emptied inbox, or a vanished key, stops start-up with one line naming the file."""

from __future__ import annotations

import shutil

import pytest

from tests.cli_run import cli
from tests.damage import DELIVERIES, DataDir, garble, truncate
from tests.harness import RelayProcess, wait_for
from workers.inbox.database import Inbox

DAMAGE = {
    "truncated": lambda path: truncate(path, keep=0.5),
    "garbled header": lambda path: garble(path, at=0, size=100),
    "garbled mid-file": lambda path: garble(path, at=0.5, size=8192),
}


@pytest.fixture
def data_dir():
    system = DataDir()
    yield system
    system.stop()


def _one_line_error(result) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_inbox_stops_run_naming_the_file_and_salvage(data_dir, damage):
    data_dir.fill()
    DAMAGE[damage](data_dir.inbox_path)
    error = _one_line_error(cli("run", "--config", str(data_dir.config), cwd=data_dir.dir))
    assert str(data_dir.inbox_path) in error and "damaged" in error and "inbox salvage" in error


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_salvage_copies_the_readable_deliveries_into_a_new_inbox(data_dir, damage):
    bodies = data_dir.fill()
    DAMAGE[damage](data_dir.inbox_path)
    aside = data_dir.dir / "inbox.damaged"
    shutil.move(data_dir.inbox_path, aside)
    result = cli("inbox", "salvage", str(aside), "--config", str(data_dir.config), cwd=data_dir.dir)
    assert result.returncode == 0, result.stderr
    rows = Inbox(data_dir.inbox_path).list(limit=1000)
    assert f"salvaged {len(rows)} delivery(ies)" in result.stdout
    codec = data_dir_codec(data_dir)
    assert all(codec.open(row.body) == bodies[row.id - 1] for row in rows)
    assert all(row.published_at is None for row in rows)
    minimum = {"garbled header": DELIVERIES, "truncated": 5, "garbled mid-file": DELIVERIES - 12}
    assert len(rows) >= minimum[damage], result.stdout


def data_dir_codec(data_dir: DataDir):
    from workers.crypto import Codec

    return Codec(data_dir.settings.encryption_keys)


def test_salvaged_deliveries_reach_the_handlers(data_dir):
    data_dir.fill()
    garble(data_dir.inbox_path, at=0, size=100)
    aside = data_dir.dir / "inbox.damaged"
    shutil.move(data_dir.inbox_path, aside)
    assert cli("inbox", "salvage", str(aside), "--config", str(data_dir.config),
               cwd=data_dir.dir).returncode == 0
    relay = RelayProcess(lambda _: data_dir.config)
    try:
        relay.start()  # the same identity and ids: start-up finds the inbox the store remembers
        events = data_dir.dir / "var" / "events.jsonl"
        wait_for(lambda: events.exists() and len(events.read_text().splitlines()) == DELIVERIES,
                 timeout=60, message="the salvaged deliveries in the jsonl file")
    finally:
        relay.cleanup()


def test_an_emptied_inbox_stops_run_until_the_loss_is_accepted(data_dir):
    data_dir.fill()
    truncate(data_dir.inbox_path, keep=0)
    error = _one_line_error(cli("run", "--config", str(data_dir.config), cwd=data_dir.dir))
    assert str(data_dir.inbox_path) in error and "empty" in error and "--accept-inbox-loss" in error
    relay = RelayProcess(lambda _: data_dir.config, run_args=("--accept-inbox-loss",))
    try:
        relay.start()
        assert "--accept-inbox-loss: going on with" in relay.log.read_text()
    finally:
        relay.cleanup()


def test_an_inbox_that_lost_its_wal_stops_run(data_dir):
    data_dir.fill()
    data_dir.restore_snapshot(with_wal=False)
    error = _one_line_error(cli("run", "--config", str(data_dir.config), cwd=data_dir.dir))
    assert str(data_dir.inbox_path) in error and "--accept-inbox-loss" in error
    assert f"#{DELIVERIES}" in error


def test_the_snapshot_with_its_wal_starts_the_checks_cleanly(data_dir):
    """The control of the test above: the same snapshot, whole, passes start-up's checks."""
    data_dir.fill()
    data_dir.restore_snapshot(with_wal=True)
    from workers.runtime.startup import start_checks

    assert start_checks(data_dir.settings, serves_inbox=True) == []


def test_a_vanished_key_with_sealed_rows_in_the_inbox_stops_run_and_makes_no_key(data_dir):
    data_dir.fill()
    key_file = data_dir.settings.key_file
    key_file.unlink()
    error = _one_line_error(cli("run", "--config", str(data_dir.config), cwd=data_dir.dir))
    assert str(key_file) in error and "restore the key file" in error and "the inbox" in error
    assert not key_file.exists()


def test_a_vanished_key_with_sealed_data_in_the_store_stops_the_worker(data_dir):
    data_dir.fill()
    key_file = data_dir.settings.key_file
    key_file.unlink()
    data_dir.inbox_path.unlink()  # only the store's mark is left to tell
    error = _one_line_error(cli("worker", "--config", str(data_dir.config), cwd=data_dir.dir))
    assert str(key_file) in error and "private redis" in error
    assert not key_file.exists()
