"""Redis full, out of memory or restarted, and data_dir's disk full: the web keeps answering (200
or 503, never refused), no worker dies, nothing is failed "for good", and once room comes back
every accepted delivery reaches its handler once."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis

from tests.harness import RelayProcess, free_port, post, read_jsonl, wait_for, write_config
from workers.ingest.parse import parse_envelope
from workers.runtime.private_redis import redis_server_binary

PAGE = "515151"


def _read(n: int) -> bytes:
    return json.dumps({"object": "page", "entry": [{"id": PAGE, "time": n, "messaging": [
        {"sender": {"id": f"user-{n % 5}"}, "recipient": {"id": PAGE}, "timestamp": 1_700_000_000_000 + n,
         "read": {"watermark": n}, "pad": "x" * 2000}]}]}).encode()


class Poster(threading.Thread):
    """Posts deliveries `numbers` at about `rate` a second; keeps each answer."""

    def __init__(self, url: str, numbers: range, rate: float = 50.0):
        super().__init__(daemon=True)
        self.url, self.numbers, self.rate = url, numbers, rate
        self.accepted: set[str] = set()
        self.answers: list[int] = []

    def run(self) -> None:
        for n in self.numbers:
            body = _read(n)
            try:
                status = post(self.url, body)[0]
            except OSError:
                status = 0  # refused or reset: what Meta must never see
            self.answers.append(status)
            if status == 200:
                self.accepted |= {e.id for e in parse_envelope(json.loads(body))}
            time.sleep(1 / self.rate)  # pacing the client, not waiting on a result


def _no_worker_died_and_nothing_failed_for_good(relay: RelayProcess) -> None:
    log = relay.log.read_text()
    assert "worker exited" not in log and "web exited" not in log, log[-4000:]
    assert "failed for good" not in log and "Unrecoverable error" not in log, log[-4000:]


def _delivered_once(events: Path, accepted: set[str], timeout: float) -> None:
    wait_for(lambda: accepted <= {r["id"] for r in read_jsonl(events)}, timeout=timeout,
             message=f"{len(accepted)} accepted events in {events}")
    ids = [r["id"] for r in read_jsonl(events)]
    assert len(ids) == len(set(ids)), "an event reached the handler twice"


@pytest.fixture()
def small_redis(tmp_path):
    """A Redis of the test's own that refuses writes past 20 MB (noeviction), as one at its limit does."""
    port = free_port()
    process = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--maxmemory", "20mb",
                                "--maxmemory-policy", "noeviction", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    wait_for(lambda: _answers(client), message="the test's redis")
    yield f"redis://127.0.0.1:{port}/0", client
    process.terminate()
    process.wait(10)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def _fill(client: redis.Redis) -> None:
    """Take every byte of maxmemory: writes are refused with OOM from now on."""
    n = 0
    for size in (1_000_000, 100_000, 10_000, 1_000, 100, 10, 1):  # down to the last bytes
        with contextlib.suppress(redis.OutOfMemoryError):
            while n < 5000:
                client.set(f"ballast-{n}", b"b" * size)
                n += 1


def test_a_done_mark_is_written_even_at_maxmemory(small_redis):
    """The handler already has the event: a refused mark would hand it over again on the retry."""
    from workers.state import Store

    url, client = small_redis
    progress = Store(url, prefix="oom").progress
    progress.note_failure("jsonl", "evt_1")
    _fill(client)
    with pytest.raises(redis.OutOfMemoryError):
        client.set("oom:anything", "1")
    progress.mark_done("jsonl", "evt_1")
    assert progress.is_done("jsonl", "evt_1") and progress.attempts("jsonl", "evt_1")[0] == 0


def test_redis_out_of_memory_is_waited_out(small_redis):
    url, client = small_redis
    relay = RelayProcess(lambda d: write_config(
        d / "c.toml", graph_url="http://127.0.0.1:9", accounts=[], broker_url=url,
        handlers=[{"type": "jsonl", "path": str(d / "events.jsonl")}],
        extra={"queue": {"visibility_timeout": 20}, "security": {"plaintext": True}}))
    try:
        relay.start()
        poster = Poster(relay.url + "/webhook", range(300))
        poster.start()
        wait_for(lambda: len(poster.answers) >= 50, message="the first deliveries")
        _fill(client)
        wait_for(lambda: "OOM" in relay.log.read_text() or "OutOfMemory" in relay.log.read_text(),
                 message="a part of inbox-relay meeting the full Redis")
        poster.join(60)
        assert set(poster.answers) <= {200, 503} and poster.answers.count(200) > 0
        client.delete(*[f"ballast-{n}" for n in range(5000)])
        _delivered_once(relay.dir / "events.jsonl", poster.accepted, timeout=90)
        _no_worker_died_and_nothing_failed_for_good(relay)
    finally:
        relay.cleanup()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs as data_dir needs root")
def test_a_full_data_disk_answers_503_and_loses_nothing():
    relay = RelayProcess(lambda d: write_config(
        d / "c.toml", graph_url="http://127.0.0.1:9", accounts=[],
        handlers=[{"type": "jsonl", "path": str(d / "events.jsonl")}],
        extra={"queue": {"visibility_timeout": 20}}))
    data_dir = relay.dir / "var"
    data_dir.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(data_dir)], check=True)
    try:
        relay.start()
        poster = Poster(relay.url + "/webhook", range(400))
        poster.start()
        wait_for(lambda: len(poster.answers) >= 50, message="the first deliveries")
        filler = data_dir / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as out:
            for _ in range(16):
                out.write(b"f" * 1_000_000)
                out.flush()
        wait_for(lambda: 503 in poster.answers, timeout=30, message="a 503 while the disk is full")
        poster.join(60)
        assert set(poster.answers) <= {200, 503}, sorted(set(poster.answers))
        filler.unlink()
        _delivered_once(relay.dir / "events.jsonl", poster.accepted, timeout=90)
        _no_worker_died_and_nothing_failed_for_good(relay)
    finally:
        relay.stop()
        subprocess.run(["umount", "-l", str(data_dir)], check=False)
        relay.cleanup()
