"""Chaos benchmark: the whole relay (2 web nodes, 2 workers, one Redis, a Graph API failing 20% of
calls) through its worst day: workers SIGKILLed, Redis killed and restarted, poison deliveries.
Prints sent, accepted, delivered, lost, duplicates; exits 1 if an event was lost or duplicated.

With --hung-http an `http` handler (default timeout and breaker) posts every event to a local
server that accepts connections and never answers; the file handler beside it must keep its
latency (p99 target: under 1 s, measured with --calm: no kills, no Redis restart).

With --full-disk web0's data_dir is a small tmpfs (needs root), filled for a while during the
load; with --redis-oom the shared Redis refuses writes (OOM, noeviction) for as long
(bench/faults.py). Either way the web answers 200 or 503 only, no part exits or fails a task "for
good", and once room is back every accepted event is delivered once; the load is slowed so that
the fault lasts under half of it.

    .venv/bin/python bench/chaos.py [--quick] [--keep] [--hung-http] [--calm] [--full-disk | --redis-oom]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import redis  # noqa: E402
import requests  # noqa: E402

from bench import faults  # noqa: E402
from bench.common import JsonlTail, percentile  # noqa: E402
from tests.harness import SECRET, free_port, wait_for, write_config  # noqa: E402
from tests.unit.test_http_deadline import Silent  # noqa: E402
from webhook_app.signature import sign  # noqa: E402
from workers.ingest.parse import parse_envelope  # noqa: E402
from workers.playground.graph_server import FakeGraphServer  # noqa: E402
from workers.playground.graph_world import GraphWorld  # noqa: E402
from workers.runtime.private_redis import redis_server_binary  # noqa: E402

PAGE, IG_PAGE, IG = "100000000000001", "100000000000002", "17841400000000001"
USERS = 20             # conversations per account: one listing call (25 conversations) covers them
KINDS = ("message", "message", "read", "reaction", "postback")  # 40% need hydration
EVENTS_ENV = "CHAOS_EVENTS"


def sink(event) -> None:
    """The `python` handler, run by the workers' pool processes: one line per event received.

    Ours rather than `jsonl`: it notes the receiving pid (a duplicate can be traced to a killed
    worker) and escapes lone surrogates (ensure_ascii), which a UTF-8 file cannot hold.
    """
    record = {"id": event.id, "kind": event.kind, "hydration": event.hydration, "pid": os.getpid()}
    with open(os.environ[EVENTS_ENV], "a", encoding="ascii") as out:
        fcntl.flock(out, fcntl.LOCK_EX)  # whole lines from four pool processes
        out.write(json.dumps({**record, "at": time.time()}) + "\n")


class Proc:
    """A command in its own process group, so that a kill takes its pool children too."""

    def __init__(self, name: str, command: list[str], log: Path, env: dict):
        self.name, self.command, self.log, self.env = name, command, log, env
        self.popen: subprocess.Popen | None = None
        self.killed_pids: set[int] = set()  # to tell the receipts of a killed worker

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.popen = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, signum: int = signal.SIGKILL) -> None:
        if self.popen is None:
            return
        try:
            leader = psutil.Process(self.popen.pid)
            self.killed_pids |= {leader.pid, *(p.pid for p in leader.children(recursive=True))}
            os.killpg(self.popen.pid, signum)
            self.popen.wait(15)
        except (psutil.Error, ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)  # whatever is left of the group
        except ProcessLookupError:
            pass
        self.popen.wait()


class Cluster:
    """Redis (append-only), the Graph stand-in, two web nodes, two workers; a log each."""

    def __init__(self, directory: Path, world: GraphWorld, visibility_timeout: float,
                 hung: Silent | None = None):
        self.dir, self.world, self.visibility_timeout = directory, world, visibility_timeout
        self.hung = hung
        self.graph = FakeGraphServer(world).__enter__()
        self.events = directory / "events.jsonl"
        env = {**os.environ, "PYTHONPATH": str(ROOT), EVENTS_ENV: str(self.events)}
        port, cli = free_port(), [sys.executable, "-m", "workers.cli"]
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        self.redis = Proc("redis", [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                                    "--dir", str(directory), "--save", "", "--appendonly", "yes",
                                    "--appendfsync", "everysec"], directory / "redis.log", env)
        self.web_ports = [free_port(), free_port()]
        self.webs = [Proc(f"web{n}", [*cli, "web", "--config", self._config(f"web{n}"), "--port", str(p),
                                      "--workers", "1"], directory / f"web{n}.log", env)
                     for n, p in enumerate(self.web_ports)]
        self.workers = [Proc(f"worker{n}", [*cli, "worker", "--config", self._config(f"worker{n}"),
                                            "--concurrency", "2"], directory / f"worker{n}.log", env)
                        for n in range(2)]

    def _config(self, name: str) -> str:
        accounts = [{"page_id": PAGE, "access_token": f"token-{PAGE}"},
                    {"page_id": IG_PAGE, "instagram_id": IG, "access_token": f"token-{IG_PAGE}"}]
        queue = {"data_dir": name, "visibility_timeout": self.visibility_timeout}  # an inbox per node
        handlers = [{"type": "python", "target": "bench.chaos:sink"}]
        if self.hung:  # the measured fault: default timeout (10 s), concurrency and breaker
            handlers.append({"type": "http", "url": self.hung.url})
        return str(write_config(self.dir / f"{name}.toml", graph_url=self.graph.url, accounts=accounts,
                                broker_url=self.redis_url, extra={"queue": queue}, handlers=handlers))

    def start(self) -> None:
        self.redis.start()
        client = redis.Redis.from_url(self.redis_url)
        wait_for(lambda: _answers(client.ping), timeout=15, message="redis")
        for proc in [*self.webs, *self.workers]:
            proc.start()
        for url in self.health_urls():
            def healthy(url: str = url) -> bool:
                return _answers(lambda: requests.get(url, timeout=1).ok)

            wait_for(healthy, timeout=60, message=url)

    def health_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/healthz" for port in self.web_ports]

    def stop(self) -> None:
        for proc in [*self.webs, *self.workers, self.redis]:
            proc.kill(signal.SIGTERM)
        self.graph.__exit__()


def _answers(call) -> bool:
    try:
        return bool(call())
    except Exception:
        return False


def load_plan(count: int) -> list[tuple[bytes, str, tuple | None]]:
    """(body, role, message the Graph world must know first); one event per delivery, both
    platforms, users drawn at random; every 100th delivery is sent again (Meta: at least once)."""
    plan: list[tuple[bytes, str, tuple | None]] = []
    pick, mid, base = random.Random(7), "m_none", int(time.time() * 1000)
    for n in range(count):
        account, kind, stamp = (PAGE, IG)[n % 2], KINDS[n // 2 % len(KINDS)], base + n
        user, known = f"{account[-2:]}u{pick.randrange(USERS):02d}", None
        item: dict = {}
        if kind == "message":
            mid, item = f"m_{n}", {"message": {"mid": f"m_{n}", "text": f"text {n}"}}
            owner = (IG_PAGE, "instagram") if account == IG else (PAGE, "messenger")
            known = (*owner, user, mid)
        elif kind == "read":
            item = {"read": {"watermark": stamp}}
        elif kind == "reaction":
            item = {"reaction": {"mid": mid, "action": "react", "reaction": "love"}}
        else:
            item = {"postback": {"title": "Start", "payload": f"P{n}", "mid": f"pb_{n}"}}
        messaging = {"sender": {"id": user}, "recipient": {"id": account}, "timestamp": stamp, **item}
        envelope = {"object": "instagram" if account == IG else "page",
                    "entry": [{"id": account, "time": stamp, "messaging": [messaging]}]}
        plan.append((json.dumps(envelope).encode(), "event", known))
        if n % 100 == 50:
            plan.append((plan[-40][0], "redelivery", None))
    return plan


def poison() -> list[bytes]:
    """20 signed deliveries: 8 the edge must answer 400, 12 it must accept though they are odd."""
    read = '{"sender":{"id":"%s"},"recipient":{"id":"' + PAGE + '"},"timestamp":%s,"read":{"watermark":1}}'
    message = '{"sender":{"id":"%s"},"recipient":{"id":"' + PAGE + '"},"timestamp":%s,"message":{"mid":"%s"}}'
    page = '{"object":%s,"entry":[{"id":"' + PAGE + '","time":1,"messaging":[%s]}]}'
    now = int(time.time() * 1000)
    refused = [b'{"object":"page","entry":[' + b"[" * 100 + b"]" * 100 + b"]}",   # nested too deep
               b'{"object":"page","entry":[' + b'{"a":' * 70 + b"1" + b"}" * 70 + b"]}",
               b'{"object":"page","entry":[{"id":"\xff\xfe"}]}', b'{"object":"page","entry":[',
               b'{"object":"page"}', b"[]", b'{"object":"page","entry":{"id":"1"}}',
               b'\xef\xbb\xbf{"object":"page","entry":[]}']
    accepted = [page % ('["page"]', read % ("p1", now)), page % ('"page"', read % ("p2", "1e999")),
                page % ('"page"', read % ("\\ud800", now + 1)), page % ('"page"', read % ("p4", "NaN")),
                page % ('"page"', f'{{"sender":{{"id":"p5"}},"timestamp":{now},"frobnicate":{{"x":1}}}}'),
                page % ('"whatsapp_business_account"', read % ("p6", now)),
                page % ('"page"', message % ("p7", "1e999", "m_poison_1e999")),
                page % ('"page"', message % ("\\ud800", now, "m_\\ud800")),
                '{"object":"page","entry":["a string",42,null,[]]}', page % ('"page"', '42, null, "x"'),
                '{"object":"instagram","entry":[{"id":"' + IG + '","changes":[{"field":"comments","value":'
                '{"from":{"id":"\\ud800"},"created_time":"not a date"}}]}]}',
                page % ('"page"', read % ("p12", "-1e308"))]
    return refused + [body.encode() for body in accepted]


def parsed(body: bytes) -> list:
    """The events of a delivery, as a worker parses them ([] if the parser raises: a bug)."""
    try:
        return parse_envelope(json.loads(body))
    except Exception as exc:
        print(f"  parse_envelope raised {type(exc).__name__}: {exc} on {body[-90:]!r}")
        return []


class Load(threading.Thread):
    """Posts the plan at a steady pace, alternating web nodes; results are (body, role, status)."""

    def __init__(self, plan: list, urls: list[str], world: GraphWorld, rate: float):
        super().__init__(daemon=True)
        self.plan, self.urls, self.world, self.rate = plan, urls, world, rate
        self.results: list[tuple[bytes, str, int]] = []
        self.sent_at: dict[bytes, float] = {}  # first send of each body (epoch seconds)
        self.stopping, self.last_send = threading.Event(), 0.0

    def run(self) -> None:
        sessions, began = [requests.Session() for _ in self.urls], time.monotonic()
        for n, (body, role, known) in enumerate(self.plan):
            if self.stopping.wait(max(0.0, began + n / self.rate - time.monotonic())):  # the pace
                return
            if known:
                self.world.add_message(*known, text="hello")  # the Graph API has it before the webhook
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(SECRET, body)}
            self.sent_at.setdefault(body, time.time())
            try:
                answer = sessions[n % 2].post(self.urls[n % 2], data=body, headers=headers, timeout=10)
                status = answer.status_code
            except requests.RequestException:
                status = 0
            self.results.append((body, role, status))
            self.last_send = time.monotonic()

    def sent(self) -> int:
        return len(self.results)


def chaos(cluster: Cluster, load: Load, kills: int) -> list[str]:
    """Worker kills and one Redis restart, spread over the load; each stays down while 2% of the
    load is sent (time counted in deliveries, so that no bare sleep is needed)."""
    total, log = len(load.plan), []
    moments = [(round(total * (k + 1) / (kills + 1.5)), cluster.workers[k % 2]) for k in range(kills)]
    for at, proc in sorted([*moments, (round(total * 0.6), cluster.redis)], key=lambda m: m[0]):
        until(lambda a=at: load.sent() >= a or not load.is_alive())
        proc.kill(signal.SIGKILL)
        log.append(f"{proc.name} SIGKILLed at delivery {load.sent()}")
        until(lambda a=at: load.sent() >= a + total // 50 or not load.is_alive())
        proc.start()
    return log


def until(condition) -> None:
    wait_for(condition, timeout=3600, interval=0.02)


class Receipts:
    """What the handler received, read from its file as it grows."""

    def __init__(self, path: Path):
        self.tail, self.count, self.records = JsonlTail(path), Counter[str](), list[dict]()

    def read(self) -> Counter:
        for record in self.tail.read():
            self.count[record["id"]] += 1
            self.records.append(record)
        return self.count

    def wait(self, expected: set[str], deadline: float) -> bool:
        """Poll until every expected id arrived; False when the deadline passed first."""
        try:
            return bool(wait_for(lambda: expected <= self.read().keys(), timeout=deadline, interval=0.1))
        except AssertionError:
            return False


def whereabouts(cluster: Cluster, ids: set[str]) -> Counter:
    """Where undelivered events wait: the queue kind in Redis (with the hydration step), or nowhere."""
    client, found = redis.Redis.from_url(cluster.redis_url, decode_responses=True), {}
    # decode_responses=True: members are str (redis-py's types do not follow that flag)
    for queue in cast("set[str]", client.smembers("inbox-relay:queues")):
        stage, *_, owner = queue.split("|")
        for item_id, body in client.hgetall(f"inbox-relay:qi:{queue}").items():
            step = f" ({json.loads(body).get('step')})" if stage == "h" else ""
            found[item_id] = f"{stage}-queue {owner}{step}"
    nowhere = sorted(i for i in ids if i not in found)
    if nowhere:  # gone from Redis without reaching the handler: grep the logs for these
        print(f"  in no queue: {' '.join(nowhere[:10])}")
    return Counter(found.get(i, "in no queue") for i in ids)


def report(load: Load, cluster: Cluster, receipts: Receipts, drained: float | None, log: list[str]) -> bool:
    """Print the figures; True when nothing was lost or duplicated."""
    received, accepted = receipts.read(), [(b, role) for b, role, status in load.results if status == 200]
    events = {e.id: e for body, role in accepted if role != "poison" for e in parsed(body)}
    poisoned = {e.id: e for body, role in accepted if role == "poison" for e in parsed(body)}
    lost, duplicated = set(events) - received.keys(), {i: n for i, n in received.items() if n > 1}
    killed = {pid for proc in cluster.workers for pid in proc.killed_pids}
    messages = sum(e.kind == "message" for e in events.values())
    hydration = Counter(r["hydration"] for r in receipts.records
                        if r["id"] in events and r["kind"] == "message")
    answers = Counter(f"{role}:{status}" for _, role, status in load.results
                      if status != 200 or role == "poison")
    calls = len(cluster.world.calls)
    parts = [*cluster.webs, *cluster.workers]
    exited = [proc for proc in parts if proc.popen and proc.popen.poll() is not None]
    log += [f"{proc.name} exited by itself (code {proc.popen.returncode}): see {proc.log.name}"
            for proc in exited if proc.popen]
    alarms, (requests_line, answered) = faults.alarms([p.log for p in parts]), faults.answers(load.results)
    print(*log, sep="\n")
    print(f"sent         {load.sent()} deliveries (answers other than 200, and poison: {dict(answers)})")
    print(f"accepted     {len(accepted)} -> {len(events)} distinct event ids (+{len(poisoned)} from poison)")
    print(f"delivered    {len(set(events) & received.keys())} (messages: {dict(hydration)})")
    print(f"lost         {len(lost)} {dict(whereabouts(cluster, lost)) if lost else ''}"
          " (accepted, not delivered by the deadline: where they are)")
    by_killed = sum(r["id"] in duplicated and r["pid"] in killed for r in receipts.records)
    print(f"duplicates   {sum(n - 1 for n in duplicated.values())} ({by_killed} receipts by killed workers)")
    print(f"poison       {len(set(poisoned) & received.keys())} of {len(poisoned)} events delivered, "
          f"{sum(poisoned[i].kind == 'unknown' for i in set(poisoned) & received.keys())} of kind unknown")
    print("drain        " + (f"{drained:.1f} s after the last send" if drained is not None
                             else "not done when the deadline passed"))
    print(f"graph        {calls / max(messages, 1):.3f} calls/message ({calls} calls, {messages} messages), "
          f"{cluster.world.count(code=2)} transient errors, {cluster.world.throttled()} throttled answers")
    print("web nodes    " + ", ".join(requests.get(u, timeout=5).text.strip() for u in cluster.health_urls()))
    print(f"requests     {requests_line} [{'MET' if answered else 'MISSED'}] 200 or 503 only")
    print(f"parts        {len(exited)} exited, {len(alarms)} alarm lines in the logs"
          + "".join(f"\n  {line}" for line in alarms[:10]))
    if cluster.hung:
        hung_report(load, cluster, receipts, accepted)
    return not lost and not duplicated and answered and not exited and not alarms


def start_fault(args: argparse.Namespace, cluster: Cluster, load: Load) -> faults.Fault | None:
    """The fault asked for, started in a thread of its own beside the kills; None without one."""
    if args.full_disk:
        hold = partial(faults.disk_full, cluster.dir / "web0")
    elif args.redis_oom:
        hold = partial(faults.redis_out_of_memory, redis.Redis.from_url(cluster.redis_url))
    else:
        return None
    fault = faults.Fault("full disk" if args.full_disk else "redis OOM", hold, load.sent, len(load.plan))
    fault.start()
    return fault


def hung_report(load: Load, cluster: Cluster, receipts: Receipts, accepted: list) -> None:
    """The file handler's latency beside the hung http handler, from POST to its receipt."""
    first: dict[str, float] = {}
    for record in receipts.records:
        first.setdefault(record["id"], record["at"])
    latency: dict[str, list[float]] = {"without a Graph call": [], "all": []}
    for body, role in accepted:
        for event in parsed(body) if role != "poison" else []:
            if event.id in first:
                seconds = first[event.id] - load.sent_at[body]
                latency["all"].append(seconds)
                if event.kind != "message":
                    latency["without a Graph call"].append(seconds)
    client = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    letters = client.zcard("inbox-relay:dead-index")
    assert cluster.hung is not None  # reported only for a run with --hung-http
    print(f"hung http    {cluster.hung.accepted} connections accepted, never answered; "
          f"dead letters {letters}")
    for name, values in latency.items():
        if values:
            p99 = percentile(values, 99)
            target = f"  [{'MET' if p99 < 1 else 'MISSED'}] p99 < 1 s" if name != "all" else ""
            print(f"file handler latency, {name} ({len(values)} events): p50 "
                  f"{percentile(values, 50) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
                  f"max {max(values) * 1000:.0f} ms{target}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 events, one worker kill")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with every log")
    parser.add_argument("--rate", type=float, default=40.0, help="deliveries per second")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds to wait for the drain")
    parser.add_argument("--linger", type=float, default=10.0, help="seconds to count late duplicates")
    parser.add_argument("--visibility-timeout", type=float, default=60.0, help="[queue] visibility_timeout")
    parser.add_argument("--hung-http", action="store_true",
                        help="an http handler whose endpoint never answers")
    parser.add_argument("--calm", action="store_true", help="no worker kills, no Redis restart")
    exclusive = parser.add_mutually_exclusive_group()
    exclusive.add_argument("--full-disk", action="store_true",
                           help=f"web0's data_dir on a tmpfs, full for {faults.FAULT_SECONDS:g} s (root)")
    exclusive.add_argument("--redis-oom", action="store_true",
                           help=f"Redis at maxmemory (noeviction) for {faults.FAULT_SECONDS:g} s")
    args = parser.parse_args()
    if args.full_disk:
        faults.require_root()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up (finally) on kill too
    count, kills = (300, 1) if args.quick else (2000, 3)
    plan, bad = load_plan(count), poison()
    for k, body in enumerate(bad):  # spread over the load
        plan.insert(round((k + 0.5) * len(plan) / len(bad)), (body, "poison", None))
    if args.full_disk or args.redis_oom:  # the fault must sit inside the load, with load after it
        args.rate = min(args.rate, len(plan) / (2 * faults.FAULT_SECONDS))
    world = GraphWorld(transient_rate=0.2)
    for page in (PAGE, IG_PAGE):
        world.add_account(page, f"token-{page}")
    directory = Path(tempfile.mkdtemp(prefix="chaos-", dir="/tmp"))
    hung = Silent() if args.hung_http else None
    cluster, load = Cluster(directory, world, args.visibility_timeout, hung), None
    mounts = contextlib.ExitStack()  # the tmpfs, unmounted after the cluster stopped
    print(f"{count} events (+redeliveries, +{len(bad)} poison) at {args.rate:g}/s, 2 web nodes, 2 workers; "
          + ("no kills" if args.calm else f"{kills} worker kill(s), 1 Redis restart")
          + f"; Graph fails {world.transient_rate:.0%} of calls"
          + ("; an http handler whose endpoint never answers" if hung else "")
          + (f"; web0's data_dir full for {faults.FAULT_SECONDS:g} s" if args.full_disk else "")
          + (f"; Redis out of memory for {faults.FAULT_SECONDS:g} s" if args.redis_oom else ""))
    try:
        if args.full_disk:
            mounts.enter_context(faults.small_tmpfs(directory / "web0"))
        cluster.start()
        load = Load(plan, [f"http://127.0.0.1:{p}/webhook" for p in cluster.web_ports], world, args.rate)
        load.start()
        fault = start_fault(args, cluster, load)
        log = [] if args.calm else chaos(cluster, load, kills)
        load.join()
        if fault:
            fault.join()
            log += fault.log
        expected = {e.id for body, role, status in load.results if status == 200 and role != "poison"
                    for e in parsed(body)}
        receipts = Receipts(cluster.events)
        drained = time.monotonic() - load.last_send if receipts.wait(expected, args.deadline) else None
        receipts.wait({"never"}, args.linger)  # late duplicates: a task handed out again
        return 0 if report(load, cluster, receipts, drained, log) else 1
    finally:
        if load:
            load.stopping.set()
        cluster.stop()
        mounts.close()
        if hung:
            hung.stop()
        print(f"logs kept in {directory}") if args.keep else shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
