"""Issue 12 benchmark: webhook to handler, end to end through `inbox-relay run`.

1. Latency, one delivery at a time: POST to the record in events.jsonl, for a `read` event (no
   Graph call) and for a message hydrated through the Graph stand-in answering in 50 ms at 2 calls/s.
2. Throughput: deliveries of 5 `read` events posted by 8 clients; events per second from the first
   POST to the last record, on the private (embedded) Redis and on the machine's Redis, against a
   trivial Celery task's rate (late acks, 2 processes) on the same kind of broker, in the same run.

    cd /work/main && .venv/bin/python bench/e2e.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import JsonlTail, messaging_body, percentile, read_events_body, table  # noqa: E402
from tests.harness import GraphBackedRelay, RelayProcess, redis_url, wait_for, write_config  # noqa: E402
from workers.playground.graph_world import GraphWorld  # noqa: E402

if TYPE_CHECKING:
    from workers.runtime.private_redis import PrivateRedis

PAGE = "100000000000001"
EVENTS_PER_DELIVERY = 5
CLIENTS = 8
GRAPH_LATENCY = 0.05
TARGET_HYDRATED_MEDIAN_MS, TARGET_EVENTS_PER_SECOND = 300.0, 600.0


def read_delivery(tag: str, n: int) -> bytes:
    """A delivery of EVENTS_PER_DELIVERY `read` events from distinct senders."""
    return read_events_body(PAGE, [f"{tag}{n}-{k}" for k in range(EVENTS_PER_DELIVERY)],
                            timestamp=int(time.time() * 1000))


def one_at_a_time(relay: RelayProcess, bodies: list[tuple[str, bytes]], field: str) -> list[float]:
    """Seconds from each POST to its record (matched on `field`), one delivery at a time."""
    tail, latencies = JsonlTail(relay.events_path), []
    seen: set[object] = set()
    for key, body in bodies:
        began = time.perf_counter()
        assert relay.post(body)[0] == 200

        def recorded(key: str = key) -> bool:
            seen.update(r.get(field) for r in tail.read() if r.get("hydration") != "pending")
            return key in seen

        wait_for(recorded, timeout=30, interval=0.002, message=f"the record of {key}")
        latencies.append(time.perf_counter() - began)
    return latencies


def latencies(count: int, broker_url: str) -> dict[str, list[float]]:
    """Read events and hydrated messages, one at a time, through one system on `broker_url`."""
    world = GraphWorld(calls_per_second=2.0)
    world.latency = GRAPH_LATENCY
    world.add_account(PAGE, "token")
    accounts = [{"page_id": PAGE, "access_token": "token"}]
    with GraphBackedRelay(world, accounts, broker_url=broker_url) as relay:
        warm = [(f"warm{n}", read_delivery("warm", n)) for n in range(3)]
        one_at_a_time(relay, [(f"warm{n}-0", body) for n, (_, body) in enumerate(warm)], "sender_id")
        reads = one_at_a_time(relay, [(f"lat{n}-0", read_delivery("lat", n)) for n in range(count)],
                              "sender_id")
        messages = []
        for n in range(count):
            mid, user = f"m_bench_{n}", f"user{n % 3}"
            world.add_message(PAGE, "messenger", user, mid, text="hello")
            time.sleep(0.6)  # pacing: one message at a time, each after the account's call spacing
            body = messaging_body(PAGE, user, {"message": {"mid": mid, "text": "hello"}},
                                  timestamp=int(time.time() * 1000))
            messages += one_at_a_time(relay, [(mid, body)], "mid")
    return {"read event": reads, "message, hydrated": messages}


def throughput(broker_url: str, deliveries: int, events: dict | None = None) -> float:
    """Events per second from the first POST to the last record, CLIENTS clients posting;
    `events`: the `[events]` table (the event log's home, or "off")."""
    extra = {"events": events} if events else None
    relay = RelayProcess(lambda d: write_config(d / "inbox-relay.toml", graph_url="http://127.0.0.1:9",
                                                accounts=[{"page_id": PAGE, "access_token": "unused"}],
                                                broker_url=broker_url, extra=extra))
    bodies = [read_delivery("tp", n) for n in range(deliveries)]
    expected = deliveries * EVENTS_PER_DELIVERY
    try:
        relay.start()
        tail, count = JsonlTail(relay.events_path), 0
        began = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            assert set(pool.map(lambda body: relay.post(body)[0], bodies)) == {200}

        def all_recorded() -> bool:
            nonlocal count
            count += len(tail.read())
            return count >= expected
        wait_for(all_recorded, timeout=600, interval=0.01, message=f"{expected} records")
        return expected / (time.perf_counter() - began)
    finally:
        relay.cleanup()


def trivial_rate(broker_url: str, tasks: int) -> float:
    """Tasks per second of a trivial Celery task through a 2-process worker on `broker_url`."""
    from bench import trivial_celery

    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_BROKER_URL": broker_url}
    command = [sys.executable, "-m", "celery", "-A", "bench.trivial_celery", "worker", "--concurrency",
               "2", "--queues", trivial_celery.QUEUE, "--loglevel", "WARNING", "--without-gossip",
               "--without-mingle"]
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    counter = trivial_celery.counter(broker_url)
    try:
        counter.delete(trivial_celery.COUNTER)
        app = trivial_celery.make_app(broker_url)
        app.send_task("bench.trivial", args=[0])  # warm-up: the worker is up once this one is done
        wait_for(lambda: int(counter.get(trivial_celery.COUNTER) or 0) == 1, timeout=60, message="the worker")
        began = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(lambda n: app.send_task("bench.trivial", args=[n]), range(tasks)))
        wait_for(lambda: int(counter.get(trivial_celery.COUNTER) or 0) > tasks, timeout=600, interval=0.01,
                 message="the trivial tasks")
        return tasks / (time.perf_counter() - began)
    finally:
        worker.terminate()
        worker.wait(30)


def private_redis(directory: Path) -> tuple[PrivateRedis, str]:
    """A Redis started as inbox-relay starts its private one (unix socket, append-only file)."""
    from workers.runtime.config import settings_from_dict
    from workers.runtime.private_redis import ensure_embedded_redis

    settings = settings_from_dict({"meta": {"app_secrets": ["x"], "verify_token": "x"},
                                   "queue": {"data_dir": str(directory)}}, env={})
    process = ensure_embedded_redis(settings, daemonize=False)
    assert process is not None
    return process, f"redis+socket://{settings.redis_socket}"


def main() -> None:
    """Latency, then throughput on both brokers with their baselines; the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer deliveries")
    quick = parser.parse_args().quick
    singles, deliveries = (10, 300) if quick else (30, 1000)
    print(f"latency: {singles} deliveries of each kind, one at a time; throughput: {deliveries} deliveries "
          f"of {EVENTS_PER_DELIVERY} `read` events from {CLIENTS} clients")
    timings = {f"{kind}, {broker}": values for broker, url in (("embedded", ""), ("Redis", redis_url(11)))
               for kind, values in latencies(singles, url).items()}
    scratch = Path(tempfile.mkdtemp(prefix="ir-e2e-"))
    rates = []
    try:
        process, private_url = private_redis(scratch)
        try:
            trivial_private = trivial_rate(private_url, deliveries * EVENTS_PER_DELIVERY)
        finally:
            process.stop(timeout=20)
        rates.append(("embedded (private Redis)", throughput("", deliveries), trivial_private))
        shared = redis_url(13)
        rates.append(("Redis 127.0.0.1:6379", throughput(redis_url(12), deliveries),
                      trivial_rate(shared, deliveries * EVENTS_PER_DELIVERY)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nPOST to record, one delivery at a time (messages: Graph stand-in answering in "
          f"{GRAPH_LATENCY * 1000:.0f} ms, 2 calls/s):")
    print(table(["event", "deliveries", "p50 ms", "p90 ms", "max ms"],
                [[name, len(x), f"{statistics.median(x) * 1000:.1f}", f"{percentile(x, 90) * 1000:.1f}",
                  f"{max(x) * 1000:.1f}"] for name, x in timings.items()]))
    print("\nend to end, events/s (baseline: a trivial Celery task on the same broker, tasks/s):")
    print(table(["broker", "inbox-relay events/s", "trivial task/s", "ratio"],
                [[name, f"{ours:.0f}", f"{base:.0f}", f"{ours / base:.2f}"] for name, ours, base in rates]))
    hydrated = statistics.median(timings["message, hydrated, embedded"]) * 1000
    checks = [(f"hydrated median < {TARGET_HYDRATED_MEDIAN_MS:.0f} ms (embedded broker)",
               hydrated < TARGET_HYDRATED_MEDIAN_MS),
              (f">= {TARGET_EVENTS_PER_SECOND:.0f} events/s on the embedded broker",
               rates[0][1] >= TARGET_EVENTS_PER_SECOND)]
    print("\ntargets:")
    for name, met in checks:
        print(f"  [{'MET' if met else 'NOT MET'}] {name}")


if __name__ == "__main__":
    main()
