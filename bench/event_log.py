"""Event log benchmark: what the log costs end to end, and how fast `events list --mid` finds one
event among a million.

1. Throughput through `inbox-relay run` (embedded broker, deliveries of 5 `read` events from 8
   clients), with the log off, on SQLite in data_dir and on the machine's PostgreSQL, in one run.
   Target: with the log on, at least 0.9 of the rate with it off.
2. `events list --mid` (the query itself, in-process) on a log seeded with 1,000,000 events and
   as many attempts, on SQLite and PostgreSQL. Target: under 50 ms.

3. With `--retention SECONDS`: a steady load with `[events] keep = "60s"`, the log's rows and
   bytes every 20 s: they level off instead of growing with the traffic.

    cd /work/main && .venv/bin/python bench/event_log.py [--quick] [--retention 240]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.common import table  # noqa: E402
from bench.e2e import throughput  # noqa: E402
from workers.crypto import Codec, new_key  # noqa: E402
from workers.events.database import open_database  # noqa: E402
from workers.events.log import INSERT_ATTEMPT, UPSERT_EVENT, EventLog  # noqa: E402
from workers.events.queries import Filters, list_events  # noqa: E402

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
TARGET_RATIO, TARGET_MID_MS = 0.9, 50.0


def new_postgres_database() -> str:
    """A database of this run's own on the machine's PostgreSQL."""
    name = f"ir_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return f"{POSTGRES}/{name}"


def drop_postgres_database(url: str) -> None:
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


def seed(journal: EventLog, rows: int, batch: int = 20_000) -> float:
    """`rows` events and as many attempts, written in big batches; seconds it took."""
    sealed = journal.codec.seal_text('{"kind": "read"}')
    began, now = time.perf_counter(), time.time()
    for start in range(0, rows, batch):
        events = [(f"evt_{n:012d}", "message", "messenger", "P1", f"m_{n:012d}", "t_1", "webhook",
                   "complete", now - n * 0.5, sealed) for n in range(start, min(rows, start + batch))]
        attempts = [(event[0], "jsonl", 1, event[8], "success", None, 1.0) for event in events]
        with journal.database().transaction() as cursor:
            cursor.executemany(UPSERT_EVENT, events)
            cursor.executemany(INSERT_ATTEMPT, attempts)
    return time.perf_counter() - began


def mid_lookup_ms(journal: EventLog, rows: int, tries: int = 30) -> list[float]:
    """Milliseconds of `events list --mid` for mids spread over the log."""
    timings = []
    for k in range(tries):
        mid = f"m_{(k * 7919) % rows:012d}"
        began = time.perf_counter()
        [found] = list_events(journal, Filters(mid=mid))
        timings.append((time.perf_counter() - began) * 1000)
        assert found["mid"] == mid and found["handlers"] == {"jsonl": "success"}
    return timings


def measure_lookups(rows: int) -> list[list]:
    results = []
    scratch = Path(tempfile.mkdtemp(prefix="ir-evlog-"))
    postgres = new_postgres_database()
    try:
        for name, url in (("SQLite", ""), ("PostgreSQL", postgres)):
            journal = EventLog(partial(open_database, url, scratch), Codec((new_key(),)))
            seconds = seed(journal, rows)
            timings = mid_lookup_ms(journal, rows)
            results.append([name, rows, f"{seconds:.0f}", f"{statistics.median(timings):.2f}",
                            f"{max(timings):.2f}"])
            journal.close()
            print(f"  {name}: seeded {rows} rows in {seconds:.0f}s; --mid median "
                  f"{statistics.median(timings):.2f} ms", flush=True)
    finally:
        drop_postgres_database(postgres)
    return results


def retention(seconds: float, keep: str = "60s", rate: float = 10.0) -> list[list]:
    """A steady load for `seconds` with `[events] keep` scaled down: the log's rows and bytes
    sampled every 20 s (the sweep prunes once a minute, so the rows level off near
    rate x events per delivery x (keep + 60 s))."""
    from bench.e2e import EVENTS_PER_DELIVERY, PAGE, read_delivery
    from tests.harness import RelayProcess, write_config

    relay = RelayProcess(lambda d: write_config(d / "inbox-relay.toml", graph_url="http://127.0.0.1:9",
                                                accounts=[{"page_id": PAGE, "access_token": "unused"}],
                                                extra={"events": {"keep": keep}}))
    samples: list[list] = []
    try:
        relay.start()
        began, n = time.monotonic(), 0
        next_sample = began + 20
        while time.monotonic() - began < seconds:
            assert relay.post(read_delivery("rt", n))[0] == 200
            n += 1
            time.sleep(max(0.0, began + n / rate - time.monotonic()))  # pacing the load
            if time.monotonic() >= next_sample:
                next_sample += 20
                samples.append(_sample(relay.dir / "var", time.monotonic() - began, n * EVENTS_PER_DELIVERY))
    finally:
        relay.cleanup()
    return samples


def _sample(data_dir: Path, elapsed: float, sent: int) -> list:
    import sqlite3

    with sqlite3.connect(data_dir / "events.db") as db:
        [(events,)] = db.execute("SELECT COUNT(*) FROM events").fetchall()
    size = sum(p.stat().st_size for p in data_dir.glob("events.db*"))
    print(f"  {elapsed:.0f}s: {sent} events sent, {events} in the log, {size / 2**20:.1f} MiB", flush=True)
    return [f"{elapsed:.0f}", sent, events, f"{size / 2**20:.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 deliveries and 100,000 rows")
    parser.add_argument("--retention", type=float, default=0, metavar="SECONDS",
                        help="also a steady load this long with keep = 60s (e.g. 240)")
    args = parser.parse_args()
    quick = args.quick
    if args.retention:
        print(f"retention: 10 deliveries/s for {args.retention:.0f}s, [events] keep = 60s")
        print(table(["s", "events sent", "rows in the log", "MiB"], retention(args.retention)))
    deliveries, rows = (300, 100_000) if quick else (1000, 1_000_000)
    postgres = new_postgres_database()
    homes = (("log off", {"log_url": "off"}), ("SQLite", None), ("PostgreSQL", {"log_url": postgres}))
    measured: dict[str, list[float]] = {name: [] for name, _ in homes}
    try:
        throughput("", 100, {"log_url": "off"})  # warm-up, not counted: the first system runs slower
        for round_ in range(1 if quick else 3):  # rounds alternate: the machine drifts
            for name, events in homes:
                measured[name].append(throughput("", deliveries, events))
                print(f"  round {round_ + 1}, {name}: {measured[name][-1]:.0f} events/s", flush=True)
    finally:
        drop_postgres_database(postgres)
    rates = [(name, statistics.median(values)) for name, values in measured.items()]
    baseline = rates[0][1]
    print("\nend to end, embedded broker, events/s (median of the rounds):")
    rows_out = [[name, f"{rate:.0f}", f"{rate / baseline:.2f}"] for name, rate in rates]
    print(table(["event log", "events/s", "vs log off"], rows_out))
    print(f"\n`events list --mid`, {rows} events in the log:")
    lookups = measure_lookups(rows)
    print(table(["backend", "rows", "seed s", "median ms", "max ms"], lookups))
    print("\ntargets:")
    met = True
    for name, rate in rates[1:]:
        ok = rate / baseline >= TARGET_RATIO
        met &= ok
        print(f"  [{'MET' if ok else 'NOT MET'}] {name}: {rate / baseline:.2f} of the rate with the log off "
              f"(>= {TARGET_RATIO})")
    for row in lookups:
        ok = float(row[3]) < TARGET_MID_MS
        met &= ok
        print(f"  [{'MET' if ok else 'NOT MET'}] {row[0]}: --mid median {row[3]} ms (< {TARGET_MID_MS:.0f})")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
