"""Inbox sync benchmark: `inbox-relay sync` of a whole account, tried as a new user would, against
a naive sync (plain listing, messages page by page, older messages by id) counted in the same run.

A Graph stand-in enforces 2 calls/s for the account (answering code 613 above it); the account is
configured with calls_per_second = 2.0. The real system runs (`inbox-relay run`, jsonl handler);
`python -m workers.cli sync --account PAGE --config ...` runs as a subprocess (not a terminal: it
prints one JSON line) and is timed; then the jsonl file is polled until every message is in it.

    cd /work/main && .venv/bin/python bench/sync.py [--quick] [--keep] [--login facebook|instagram|both]

`--login instagram` syncs the same history as an Instagram Login account (no Page): its own Graph
host (a second stand-in, which must be the only one called) and `/me/conversations`; `both` (the
default) runs the two one after the other, each against the same naive baseline.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.common import JsonlTail, table  # noqa: E402
from tests.harness import GraphBackedRelay, RelayProcess  # noqa: E402
from workers.playground.graph_server import FakeGraphServer  # noqa: E402
from workers.playground.graph_world import NEWEST_WITH_DETAILS, GraphWorld  # noqa: E402
from workers.state.budgets import PACING_MARGIN_MS  # noqa: E402

PAGE, TOKEN = "100000000000071", "token-100000000000071"
CALLS_PER_SECOND = 2.0
HOUR = 3600.0
LISTING_PAGE, OLDER_PAGE = 25, 100             # what inbox-relay's sync asks for per call
NAIVE_LISTING_PAGE, NAIVE_MESSAGE_PAGE = 25, 20  # what the naive sync asks for per call
DETAIL_FIELDS = "id,created_time,from,to,message,attachments,sticker,shares,tags"
SYNC_TIMEOUT = 900.0
PACING_MARGIN = PACING_MARGIN_MS / 1000  # the budget spaces calls 1/rate apart plus this
TARGET_CALLS_PER_MESSAGE, TARGET_TIME_RATIO = 0.05, 1.2


@dataclass
class Outcome:
    """What one sync did: figures from the stand-in's call log and the handler's records."""

    name: str
    messages: int                     # in the stand-in
    delivered: int = 0                # distinct event ids that reached the handler
    duplicates: int = 0               # records beyond the first of an event id
    complete: int = 0                 # distinct messages hydrated complete
    calls: int = 0
    throttled: int = 0
    seconds: float | None = None      # wall time; None: not run against the rate limit
    kinds: Counter = field(default_factory=Counter)

    @property
    def per_message(self) -> float:
        """Graph calls per message in the stand-in."""
        return self.calls / self.messages if self.messages else 0.0

    @property
    def budget_seconds(self) -> float:
        """The least time its calls take at the account's budget."""
        return self.calls / CALLS_PER_SECOND

    def cells(self) -> list:
        """The row as table cells."""
        seconds = f"{self.seconds:.1f}" if self.seconds is not None else "-"
        ratio = f"{self.seconds / self.budget_seconds:.3f}x" if self.seconds and self.calls else "-"
        delivered = self.delivered if self.seconds is not None else "-"
        duplicates = self.duplicates if self.seconds is not None else "-"
        return [self.name, self.messages, delivered, duplicates, self.complete, self.calls,
                f"{self.per_message:.4f}", self.throttled, seconds, f"{self.budget_seconds:.1f}", ratio]


# -- the world ----------------------------------------------------------------------------
def build_world(world: GraphWorld, conversations: int, messages: int, platform: str) -> None:
    """`conversations` conversations of `messages` messages each, a day old and one a second,
    oldest first; every fifth message is the page's reply (an echo)."""
    start = time.time() - 24 * HOUR
    for c in range(conversations):
        user = f"U{c:05d}"
        for m in range(messages):
            world.add_message(PAGE, platform, user, f"m_{c}_{m}", text=f"old {c}.{m}",
                              from_id=PAGE if m % 5 == 4 else user, created=start + c * messages + m)


def new_world(conversations: int, messages: int, *, calls_per_second: float,
              platform: str = "messenger") -> GraphWorld:
    """The benchmark's account with its history, at a given rate limit (for Instagram Login, the
    account id stands for its instagram_id, and the history is its Instagram inbox)."""
    world = GraphWorld(calls_per_second=calls_per_second)
    world.add_account(PAGE, TOKEN, issued=time.time() - 2 * 86400, expires=time.time() + 58 * 86400)
    build_world(world, conversations, messages, platform)
    return world


def calls_between(world: GraphWorld, start: int, end: int | None = None) -> list[dict]:
    """The account's calls in the world's log from call number `start` to `end`."""
    with world.lock:
        return [c for c in world.calls[start:end] if c["page_id"] == PAGE]


def call_kinds(calls: list[dict]) -> Counter:
    """Calls by endpoint: conversation listings, message pages of a conversation, single messages."""
    def kind(path: str) -> str:
        part = path.strip("/")
        if part.endswith("/conversations"):
            return "listing"
        if part.endswith("/messages"):
            return "message page"
        return "conversation" if part.startswith("t_") else "message by id"
    return Counter(kind(c["path"]) for c in calls)


def kinds_text(kinds: Counter) -> str:
    """Calls by endpoint, as text."""
    return ", ".join(f"{name}={kinds[name]}" for name in ("listing", "message page", "message by id",
                                                           "conversation") if kinds[name])


# -- inbox-relay's sync, as a user runs it ----------------------------------------------------
class OwnDirRelay(RelayProcess):
    """`inbox-relay run` as the harness starts it, in a directory named for this benchmark: while
    it was measured, /tmp/ir-* directories of running systems were removed from outside the
    project (and with them the jsonl file, the inbox and the Redis socket)."""

    def __init__(self, config_for):
        super().__init__(config_for)
        first, self.dir = self.dir, Path(tempfile.mkdtemp(prefix="irsync-", dir="/tmp"))
        shutil.rmtree(first, ignore_errors=True)
        self.config, self.log = config_for(self.dir), self.dir / "run.log"


def run_sync(relay: RelayProcess) -> tuple[subprocess.CompletedProcess, float]:
    """`python -m workers.cli sync --account PAGE --config ...` as a subprocess; (result, seconds)."""
    command = [sys.executable, "-m", "workers.cli", "sync", "--account", PAGE, "--config", str(relay.config)]
    began = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=SYNC_TIMEOUT)
    return result, time.monotonic() - began


def wait_delivered(relay: RelayProcess, expected: int, timeout: float) -> tuple[list[dict], float]:
    """Poll the jsonl file until `expected` distinct event ids are in it, or the deadline;
    (every record read, seconds waited)."""
    tail, records, ids = JsonlTail(relay.events_path), [], set[str]()
    began = time.monotonic()
    deadline = began + timeout
    while True:
        fresh = tail.read()
        records += fresh
        ids.update(r["id"] for r in fresh)
        if len(ids) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # anything that would arrive twice arrives now
    records += tail.read()
    return records, time.monotonic() - began


def settle(records: list[dict], messages: int, per_conversation: int,
           name: str) -> tuple[Outcome, list[str]]:
    """Counts from the records, and notes on anything unexpected in them."""
    by_id: dict[str, list[dict]] = {}
    for record in records:
        by_id.setdefault(record["id"], []).append(record)
    outcome = Outcome(name, messages, delivered=len(by_id),
                      duplicates=len(records) - len(by_id))
    newest_from = per_conversation - NEWEST_WITH_DETAILS
    notes = []
    complete = [rs[0] for rs in by_id.values() if rs[0]["hydration"] == "complete"]
    outcome.complete = len({r["mid"] for r in complete})
    wrong = [r["mid"] for r in complete if int(r["mid"].rsplit("_", 1)[1]) < newest_from]
    if wrong:
        notes.append(f"{len(wrong)} message(s) beyond the 20 newest came complete, e.g. {wrong[:3]}")
    mids = Counter(rs[0]["mid"] for rs in by_id.values())
    if len(mids) != len(by_id):
        notes.append(f"{len(by_id) - len(mids)} message(s) reached the handler under two event ids")
    sources = Counter(rs[0].get("source") for rs in by_id.values())
    if set(sources) != {"sync"}:
        notes.append(f"sources: {dict(sources)}")
    return outcome, notes


def measure_sync(conversations: int, per_conversation: int, keep: bool,
                 login: str = "facebook") -> tuple[Outcome, dict, list[str]]:
    """Start the system, run the sync, wait for the handler; (outcome, the sync's JSON line, notes)."""
    instagram = login == "instagram"
    world = new_world(conversations, per_conversation, calls_per_second=CALLS_PER_SECOND,
                      platform="instagram" if instagram else "messenger")
    messages = len(world.messages)
    if instagram:  # the history is on the Instagram host; the Facebook host must see no call
        facebook = GraphWorld(calls_per_second=CALLS_PER_SECOND)
        accounts = [{"login": "instagram", "instagram_id": PAGE, "access_token": TOKEN,
                     "calls_per_second": CALLS_PER_SECOND}]
        world.me_only = True
        system = GraphBackedRelay(facebook, accounts, instagram_world=world)
    else:
        accounts = [{"page_id": PAGE, "access_token": TOKEN, "calls_per_second": CALLS_PER_SECOND}]
        system = GraphBackedRelay(world, accounts)  # jsonl handler to var/events.jsonl
    notes: list[str] = []
    try:
        # GraphBackedRelay.__enter__, in steps, so that `finally` cleans up a failed start too.
        if system.instagram:
            system.instagram.__enter__()
        system.server.__enter__()
        system.relay = relay = OwnDirRelay(system.write_config)
        began = time.monotonic()
        relay.start()
        before = len(world.calls)
        print(f"  system ready in {time.monotonic() - began:.1f}s; sync of {conversations} "
              f"conversations x {per_conversation} messages ...", flush=True)
        result, seconds = run_sync(relay)
        after = len(world.calls)
        if result.returncode != 0:
            notes.append(f"sync exited {result.returncode}: {result.stderr.strip()[-2000:]}")
        lines = result.stdout.strip().splitlines()
        try:
            summary = json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            summary = {}
            notes.append(f"sync printed no JSON line: {result.stdout.strip()[-500:]!r}")
        print(f"  sync done in {seconds:.1f}s: {json.dumps(summary)}", flush=True)
        records, waited = wait_delivered(relay, messages, timeout=max(60.0, messages / 25))
        print(f"  handler records read {waited:.1f}s after the sync ended", flush=True)
        outcome, more = settle(records, messages, per_conversation, f"inbox-relay sync ({login})")
        if instagram and (system.world.calls or system.world.setup_calls):
            more.append(f"{len(system.world.calls)} call(s) went to the Facebook host")
        notes += more
        if outcome.delivered < messages:
            print_diagnosis(relay)
        sync_calls = calls_between(world, before, after)
        outcome.calls, outcome.seconds, outcome.kinds = len(sync_calls), seconds, call_kinds(sync_calls)
        outside = calls_between(world, 0, before) + calls_between(world, after)
        outcome.throttled = sum(c["code"] == 613 for c in sync_calls + outside)
        if outside:
            notes.append(f"{len(outside)} Graph call(s) of the account outside the sync: "
                         f"{kinds_text(call_kinds(outside))}")
        if summary.get("calls") not in (None, outcome.calls):
            notes.append(f"the sync counted {summary['calls']} calls, the stand-in {outcome.calls}")
        if sync_calls:
            print_pacing(sync_calls, seconds)
        return outcome, summary, notes
    finally:
        if system.relay is not None and keep:
            system.relay.stop()
            system.server.__exit__()
            print(f"  system directory and log kept in {system.relay.dir}")
        elif system.relay is not None:
            system.__exit__(None, None, None)
        else:
            system.server.__exit__()
        if system.instagram and (keep or system.relay is None):
            system.instagram.__exit__()


def print_diagnosis(relay: RelayProcess) -> None:
    """Why records are missing: `inbox-relay status`, the worker's task lines, the log's problems."""
    if not relay.log.exists():
        print(f"  WARNING: records are missing: the system's directory {relay.dir} was removed during "
              "the run, from outside")
        return
    command = [sys.executable, "-m", "workers.cli", "status", "--config", str(relay.config)]
    status = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=60)
    print("  WARNING: records are missing; `inbox-relay status`:")
    print("    " + (status.stdout + status.stderr).strip().replace("\n", "\n    "))
    lines = relay.log.read_text(errors="replace").splitlines()
    tasks = Counter(m.group(1) for m in (re.search(r"Task (inbox_relay\.\w+)\[\S+\] received", line)
                                         for line in lines) if m)
    print(f"  tasks the worker received (logged at --log-level debug): {dict(tasks)}")
    noisy = ("MonkeyPatchWarning", "SecurityWarning", "_warn_or_raise", "monkey.patch_all")
    problems = [line for line in lines if re.search(r"WARNING|ERROR|CRITICAL|Traceback|rror:|restart|exit",
                                                    line) and not any(n in line for n in noisy)]
    print(f"  the run log's problems ({len(problems)}, last 30; log {relay.log}):")
    for line in problems[-30:]:
        print(f"    {line[:300]}")


def print_pacing(calls: list[dict], seconds: float) -> None:
    """Where the sync's wall time went: the gaps between its calls, by the kind of the call before,
    and what it spent beyond calls/budget."""
    span = calls[-1]["at"] - calls[0]["at"]
    spacing = 1 / CALLS_PER_SECOND + PACING_MARGIN
    print(f"  first to last call {span:.1f}s; before the first call and after the last "
          f"{seconds - span:.1f}s (the command's start and end)")
    gaps: dict[str, list[float]] = {}
    for before, after in itertools.pairwise(calls):
        gaps.setdefault(call_kinds([before]).most_common(1)[0][0], []).append(after["at"] - before["at"])
    for kind, values in gaps.items():
        print(f"  gaps after a {kind} call: {len(values)}, mean {sum(values) / len(values):.3f}s, "
              f"max {max(values):.3f}s (budget spacing {spacing:.3f}s)")
    budget = len(calls) / CALLS_PER_SECOND
    margin = (len(calls) - 1) * PACING_MARGIN
    late = span - (len(calls) - 1) * spacing  # steps that took longer than the spacing, net
    print(f"  beyond calls/budget ({budget:.1f}s): {seconds - budget:.1f}s = pacing margin {margin:.1f}s"
          f" + calls later than the spacing {late:.1f}s + the command's start and end "
          f"{seconds - span:.1f}s - the first call's free slot {1 / CALLS_PER_SECOND:.1f}s")


# -- the naive sync ---------------------------------------------------------------------------
def naive_calls(conversations: int, per_conversation: int) -> int:
    """The calls of the naive sync, counted from the world's shape."""
    listing = math.ceil(conversations / NAIVE_LISTING_PAGE)
    pages = conversations * math.ceil(per_conversation / NAIVE_MESSAGE_PAGE)
    by_id = conversations * max(0, per_conversation - NEWEST_WITH_DETAILS)
    return listing + pages + by_id


def ours_calls(conversations: int, per_conversation: int) -> int:
    """The calls inbox-relay's sync should make: nested listings, then one older page per 100."""
    older = math.ceil(max(0, per_conversation - NEWEST_WITH_DETAILS) / OLDER_PAGE)
    return math.ceil(conversations / LISTING_PAGE) + conversations * older


def measure_naive(conversations: int, per_conversation: int) -> Outcome:
    """The naive sync, in-process against the same history at a rate limit it never reaches: it
    lists conversations (25 a call, no nested messages), reads each conversation's messages page by
    page (20 a call, with details), then asks for each message that came without details by id."""
    world = new_world(conversations, per_conversation, calls_per_second=1e9)
    outcome = Outcome("naive sync", len(world.messages))
    # A new connection per call: on a kept-alive one the stand-in's two writes per answer meet
    # delayed ACKs (about 40 ms a call), which would make this count take as long as the sync.
    headers = {"Authorization": f"Bearer {TOKEN}", "Connection": "close"}
    with FakeGraphServer(world) as graph:
        def get(path: str, params: dict) -> tuple[int, dict]:
            answer = requests.get(f"{graph.url}/v27.0/{path}", params=params, headers=headers, timeout=10)
            return answer.status_code, answer.json()

        def pages(path: str, params: dict):
            while True:
                _, body = get(path, params)
                yield body.get("data") or []
                paging = body.get("paging") or {}
                if not paging.get("next"):
                    return
                params = {**params, "after": paging["cursors"]["after"]}

        found: dict[str, dict] = {}
        listing = {"platform": "messenger", "fields": "id,updated_time", "limit": NAIVE_LISTING_PAGE}
        for nodes in pages(f"{PAGE}/conversations", listing):
            for node in nodes:
                fields = {"fields": DETAIL_FIELDS, "limit": NAIVE_MESSAGE_PAGE}
                for messages in pages(f"{node['id']}/messages", fields):
                    for message in messages:
                        if "from" not in message:  # beyond the 20 newest: ask for it by id
                            status, body = get(message["id"], {"fields": DETAIL_FIELDS})
                            message = body if status == 200 else message
                        found[message["id"]] = message
    calls = calls_between(world, 0)
    outcome.calls, outcome.kinds = len(calls), call_kinds(calls)
    outcome.throttled = sum(c["code"] == 613 for c in calls)
    outcome.complete = sum("from" in m for m in found.values())
    return outcome


# -- the report -----------------------------------------------------------------------------
def report(ours: Outcome, naive: Outcome, conversations: int, per_conversation: int,
           summary: dict, notes: list[str]) -> bool:
    """Print the figures and the targets; True when every target is met."""
    headers = ["sync", "messages", "delivered", "duplicates", "hydrated complete", "Graph calls",
               "calls/message", "throttled", "wall s", "calls/budget s", "wall vs budget"]
    print("\n" + table(headers, [ours.cells(), naive.cells()]))
    print(f"\ncalls by endpoint: inbox-relay: {kinds_text(ours.kinds)}; naive: {kinds_text(naive.kinds)}")
    expected_ours, expected_naive = ours_calls(conversations, per_conversation), naive_calls(conversations,
                                                                                           per_conversation)
    print(f"calls expected from the world's shape: inbox-relay {expected_ours}, naive {expected_naive}"
          f" (naive counted {naive.calls})")
    ratio = naive.calls / ours.calls if ours.calls else 0.0
    print(f"naive calls vs inbox-relay calls: {naive.calls} / {ours.calls} = {ratio:.1f}x; at "
          f"{CALLS_PER_SECOND:g} calls/s the naive sync needs at least {naive.budget_seconds:.0f}s")
    if summary:
        print(f"the sync's own line: {json.dumps(summary)}")
    wanted_complete = conversations * min(per_conversation, NEWEST_WITH_DETAILS)
    time_ratio = ours.seconds / ours.budget_seconds if ours.seconds and ours.calls else math.inf
    checks = [("the sync command exits 0 with its JSON line", bool(summary) and not any(
                   n.startswith("sync exited") for n in notes)),
              (f"every message delivered ({ours.delivered} of {ours.messages})",
               ours.delivered == ours.messages),
              (f"no duplicate records ({ours.duplicates})", ours.duplicates == 0),
              (f"the 20 newest of each conversation hydrated complete ({ours.complete} of {wanted_complete})",
               ours.complete == wanted_complete),
              (f"calls/message <= {TARGET_CALLS_PER_MESSAGE} ({ours.per_message:.4f})",
               ours.per_message <= TARGET_CALLS_PER_MESSAGE),
              (f"zero throttled answers ({ours.throttled})", ours.throttled == 0),
              (f"sync wall time <= {TARGET_TIME_RATIO}x calls/budget ({time_ratio:.3f}x)",
               time_ratio <= TARGET_TIME_RATIO)]
    print("\ntargets:")
    for name, met in checks:
        print(f"  [{'MET' if met else 'NOT MET'}] {name}")
    for note in notes:
        print(f"  note: {note}")
    return all(met for _, met in checks)


def main() -> None:
    """Run inbox-relay's sync and count the naive one; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 conversations instead of 150")
    parser.add_argument("--keep", action="store_true", help="keep the system's directory and log")
    parser.add_argument("--login", choices=["facebook", "instagram", "both"], default="both",
                        help="a Page account, an Instagram Login account, or one after the other")
    args = parser.parse_args()
    conversations, per_conversation = (30, 30) if args.quick else (150, 30)
    print(f"1 account, {conversations} conversations x {per_conversation} messages; the stand-in allows "
          f"{CALLS_PER_SECOND:g} calls/s, the account is configured with calls_per_second = "
          f"{CALLS_PER_SECOND:g}", flush=True)
    naive = measure_naive(conversations, per_conversation)
    met = True
    for login in (["facebook", "instagram"] if args.login == "both" else [args.login]):
        print(f"\n== {login} login", flush=True)
        ours, summary, notes = measure_sync(conversations, per_conversation, args.keep, login)
        met = report(ours, naive, conversations, per_conversation, summary, notes) and met
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
