"""Issue 3 benchmark: Graph calls per message, throttling and hydrated messages/s of inbox-relay,
against a naive client (conversation lookup + message detail per message) measured in the same run.

    cd /work/main && .venv/bin/python bench/hydrate.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from bench.common import messaging_body, table
from tests.harness import RelayProcess, wait_for, write_config
from workers.playground.graph_server import FakeGraphServer
from workers.playground.graph_world import GraphWorld

CALLS_PER_SECOND = 2.0
NAIVE_INTERVAL = 1 / CALLS_PER_SECOND + 0.06  # the same safety margin as workers/state/budgets.py
PAGES = ("100000000000001", "100000000000002", "100000000000003")
BURST = 10
WAIT_TIMEOUT = 90.0
TARGET_BURST_CALLS, TARGET_SPEEDUP, TARGET_SINGLE_CALLS = 0.05, 5.0, 1.05


@dataclass
class Row:
    """One scenario's figures."""

    scenario: str
    messages: int
    complete: int
    calls: int
    throttled: int
    seconds: float | None  # None: the posting was paced, so a rate says nothing
    duplicates: int = 0

    @property
    def per_message(self) -> float:
        """Graph calls per message."""
        return self.calls / self.messages if self.messages else 0.0

    @property
    def rate(self) -> float | None:
        """Hydrated messages per second."""
        return self.messages / self.seconds if self.seconds else None

    def cells(self) -> list:
        """The row as table cells."""
        rate = f"{self.rate:.2f}" if self.rate else "(paced)"
        return [self.scenario, self.messages, self.complete, self.calls, f"{self.per_message:.3f}",
                self.throttled, rate, self.duplicates]


def token(page: str) -> str:
    """The access token of a page in the fake world."""
    return f"token-{page}"


def new_world() -> GraphWorld:
    """A fake Graph API world with the benchmark's pages and a 2 calls/s limit."""
    world = GraphWorld(calls_per_second=CALLS_PER_SECOND)
    for page in PAGES:
        world.add_account(page, token(page))
    return world


def user_id(page: str, group: int, n: int) -> str:
    """A customer id, distinct per page, group (scenario) and conversation."""
    return f"{group}{page[-3:]}{n:04d}"


def new_message(world: GraphWorld, page: str, user: str, n: int) -> tuple[str, bytes]:
    """Add a message created now to the world; returns its mid and its webhook delivery body."""
    mid = f"m_{user}_{n}"
    now = time.time()
    world.add_message(page, "messenger", user, mid, text=f"text {n}", created=now)
    return mid, messaging_body(page, user, {"message": {"mid": mid, "text": f"text {n}"}},
                               timestamp=int(now * 1000))


def calls_since(world: GraphWorld, start: int) -> list[dict]:
    """The Graph calls the world answered since call number `start`."""
    with world.lock:
        return list(world.calls[start:])


def call_kinds(calls: list[dict]) -> str:
    """Calls by endpoint: conversation lookups, conversation reads, message reads."""
    def kind(path: str) -> str:
        part = path.strip("/")
        if part.endswith("/conversations"):
            return "lookup"
        return "conversation" if part.startswith("t_") else "message"
    counts = Counter(kind(c["path"]) for c in calls)
    return ", ".join(f"{name}={counts[name]}" for name in ("lookup", "conversation", "message"))


def wait_records(relay: RelayProcess, mids: set[str]) -> dict[str, list[dict]]:
    """Poll the jsonl file until every mid has a record (or the deadline); records by mid."""
    def by_mid() -> dict[str, list[dict]]:
        found: dict[str, list[dict]] = {}
        for record in relay.events():
            if record.get("mid") in mids:
                found.setdefault(record["mid"], []).append(record)
        return found
    def all_found() -> dict[str, list[dict]] | None:
        found = by_mid()
        return found if len(found) == len(mids) else None
    try:
        return wait_for(all_found, timeout=WAIT_TIMEOUT, interval=0.05, message="every record")
    except AssertionError:
        found = by_mid()
        print(f"  WARNING: only {len(found)} of {len(mids)} messages reached the handler "
              f"in {WAIT_TIMEOUT:.0f}s")
        return found


def settle(name: str, world: GraphWorld, start: int, records: dict, messages: int,
           seconds: float | None) -> Row:
    """A Row from the records found and the calls made since `start`."""
    calls = calls_since(world, start)
    complete = sum(1 for rs in records.values() if any(r["hydration"] == "complete" for r in rs))
    duplicates = sum(len(rs) - 1 for rs in records.values())
    print(f"  {name}: calls by endpoint: {call_kinds(calls)}")
    throttled = sum(c["code"] == 613 for c in calls)
    return Row(name, messages, complete, len(calls), throttled, seconds, duplicates)


def post_all(relay: RelayProcess, bodies: list[bytes]) -> None:
    """Post deliveries from a small thread pool; every answer must be 200."""
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda body: relay.post(body)[0], bodies))
    if set(statuses) != {200}:
        print(f"  WARNING: answers {Counter(statuses)}")


def bursts(relay: RelayProcess, world: GraphWorld, conversations: int) -> Row:
    """Scenario a: BURST messages per conversation, each its own delivery, posted at once."""
    messages = [new_message(world, page, user_id(page, 1, c), n)
                for n in range(BURST) for page in PAGES for c in range(conversations)]
    start, began = len(world.calls), time.monotonic()
    post_all(relay, [body for _, body in messages])
    records = wait_records(relay, {mid for mid, _ in messages})
    return settle("bursts", world, start, records, len(messages), time.monotonic() - began)


def singles(relay: RelayProcess, world: GraphWorld, conversations: int, rounds: int) -> list[Row]:
    """Scenario b: one warm-up message per conversation, then spaced single messages."""
    users = [(page, user_id(page, 2, c)) for c in range(conversations) for page in PAGES]
    warm = [new_message(world, page, user, 0) for page, user in users]
    start, began = len(world.calls), time.monotonic()
    post_all(relay, [body for _, body in warm])
    records = wait_records(relay, {mid for mid, _ in warm})
    rows = [settle("singles warm-up", world, start, records, len(warm), time.monotonic() - began)]
    start, mids = len(world.calls), set()
    spacing = 1.5 / len(users)  # each conversation gets one message every ~1.5 s
    for n in range(1, rounds + 1):
        for page, user in users:
            mid, body = new_message(world, page, user, n)
            mids.add(mid)
            relay.post(body)
            time.sleep(spacing)  # pacing the traffic, not waiting for a result
    records = wait_records(relay, mids)
    rows.append(settle("singles (cached)", world, start, records, len(mids), None))
    return rows


def naive(conversations: int, per_conversation: int) -> Row:
    """Scenario c: per message one lookup and one detail call, paced at the limit per account."""
    world = new_world()
    work = {page: [(user_id(page, 3, c), new_message(world, page, user_id(page, 3, c), n)[0])
                   for n in range(per_conversation) for c in range(conversations)] for page in PAGES}
    complete: Counter = Counter()
    with FakeGraphServer(world) as graph:
        threads = [threading.Thread(target=naive_account, args=(graph.url, page, work[page], complete))
                   for page in PAGES]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.monotonic() - began
    messages = sum(len(items) for items in work.values())
    calls = calls_since(world, 0)
    print(f"  naive: calls by endpoint: {call_kinds(calls)}")
    return Row("naive baseline", messages, complete["ok"], len(calls),
               sum(c["code"] == 613 for c in calls), seconds)


def naive_account(url: str, page: str, items: list[tuple[str, str]], complete: Counter) -> None:
    """One account's naive client: lookup then detail per message, one call every NAIVE_INTERVAL."""
    session, next_call = requests.Session(), time.monotonic()
    for user, mid in items:
        calls = ((f"{page}/conversations", {"platform": "messenger", "user_id": user}),
                 (mid, {"fields": "id,created_time,from,to,message"}))
        for path, params in calls:
            time.sleep(max(0.0, next_call - time.monotonic()))
            next_call = time.monotonic() + NAIVE_INTERVAL
            answer = session.get(f"{url}/v27.0/{path}", params={**params, "access_token": token(page)},
                                 timeout=10)
        complete["ok"] += answer.status_code == 200


def report(rows: list[Row]) -> None:
    """Print the table, the speed-up and whether the targets are met."""
    headers = ["scenario", "messages", "hydrated complete", "calls", "calls/message", "throttled",
               "messages/s", "duplicates"]
    print("\n" + table(headers, [row.cells() for row in rows]))
    burst, single, baseline = rows[0], rows[2], rows[3]
    speedup = (burst.rate or 0) / baseline.rate if baseline.rate else 0.0
    print(f"\nbursts messages/s vs naive: {burst.rate or 0:.2f} / {baseline.rate or 0:.2f} = {speedup:.1f}x")
    ours = rows[:3]
    checks = [("zero throttled answers (inbox-relay)", sum(r.throttled for r in ours) == 0),
              (f"bursts <= {TARGET_BURST_CALLS} calls/message", burst.per_message <= TARGET_BURST_CALLS),
              (f"bursts >= {TARGET_SPEEDUP:.0f}x naive messages/s", speedup >= TARGET_SPEEDUP),
              (f"singles <= {TARGET_SINGLE_CALLS} calls/message after warm-up",
               single.per_message <= TARGET_SINGLE_CALLS),
              ("every message hydrated complete", all(r.complete == r.messages for r in ours)),
              ("no duplicate records", all(r.duplicates == 0 for r in ours))]
    print("\ntargets:")
    for name, met in checks:
        print(f"  [{'MET' if met else 'NOT MET'}] {name}")


def main() -> None:
    """Run the three scenarios and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer conversations and rounds")
    parser.add_argument("--keep", action="store_true", help="keep the system's directory and log")
    args = parser.parse_args()
    quick = args.quick
    conversations, rounds, single_conversations = (2, 2, 1) if quick else (4, 4, 2)
    print(f"{len(PAGES)} accounts, {CALLS_PER_SECOND:g} calls/s each; bursts: {conversations} "
          f"conversations x {BURST} messages per account; singles: {single_conversations} "
          f"conversation(s) per account x {rounds} rounds")
    world = new_world()
    with FakeGraphServer(world) as graph:
        accounts = [{"page_id": page, "access_token": token(page)} for page in PAGES]
        relay = RelayProcess(lambda d: write_config(d / "inbox-relay.toml", graph_url=graph.url,
                                                    accounts=accounts))
        try:
            relay.start()
            rows = [bursts(relay, world, conversations), *singles(relay, world, single_conversations, rounds)]
        finally:
            relay.stop() if args.keep else relay.cleanup()
    if args.keep:
        print(f"system directory and log kept in {relay.dir}")
    rows.append(naive(conversations, 1 if quick else 2))
    report(rows)


if __name__ == "__main__":
    main()
