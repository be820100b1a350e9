"""Issue 2 benchmark: POST-to-handler latency of inbox-relay, and POST /webhook ack latency and
throughput against a bare Flask app (HMAC check only) on gunicorn with the same worker count.

    cd /work/main && .venv/bin/python bench/latency.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.common import JsonlTail, messaging_body, percentile, table  # noqa: E402
from tests.harness import SECRET, RelayProcess, free_port, post, wait_for, write_config  # noqa: E402
from webhook_app.signature import sign  # noqa: E402

PAGE = "100000000000001"
WEB_WORKERS = 2        # what `inbox-relay run` starts by default
THREADS = 4
BODY_BYTES = 2048      # about the size of a real delivery with a message
WARM_UP = 100


def read_body(sender: str, *, padding: int = 0) -> bytes:
    """A delivery with one `read` event, which needs no Graph call."""
    now = int(time.time() * 1000)
    return messaging_body(PAGE, sender, {"read": {"watermark": now}}, timestamp=now, padding=padding)


def sized_bodies(prefix: str, count: int) -> list[tuple[bytes, str]]:
    """`count` distinct signed deliveries of about BODY_BYTES each, with their signatures."""
    padding = BODY_BYTES - len(read_body(f"{prefix}000000"))
    bodies = [read_body(f"{prefix}{n:06d}", padding=padding) for n in range(count)]
    return [(body, sign(SECRET, body)) for body in bodies]


def end_to_end(relay: RelayProcess, count: int) -> list[float]:
    """Seconds from each POST to its record in the jsonl file, one delivery at a time."""
    tail, seen, latencies = JsonlTail(relay.events_path), set(), []
    for n in range(count + 3):  # the first three warm up the worker's connections
        sender = f"e2e{n:06d}"
        began = time.perf_counter()
        status, _ = relay.post(read_body(sender))
        assert status == 200, status
        # A default binds this iteration's sender: a closure would read whatever the loop holds later.
        wait_for(lambda sender=sender: seen.update(r["sender_id"] for r in tail.read()) or sender in seen,
                 timeout=20, interval=0.002, message=f"the record of {sender}")
        if n >= 3:
            latencies.append(time.perf_counter() - began)
    return latencies


def hydrated_end_to_end(count: int) -> list[float]:
    """Seconds from POST to the hydrated record, one new message at a time (Graph stand-in, 2 calls/s)."""
    from tests.fake_graph import GraphWorld
    from tests.harness import GraphBackedRelay

    world = GraphWorld()
    world.add_account(PAGE, "token")
    system = GraphBackedRelay(world, [{"page_id": PAGE, "access_token": "token"}])
    latencies = []
    with system as relay:
        tail, seen = JsonlTail(relay.events_path), set()
        for n in range(count):
            mid = f"m_bench_{n}"
            world.add_message(PAGE, "messenger", f"user{n % 3}", mid, text="hello")
            now = int(time.time() * 1000)
            began = time.perf_counter()
            body = messaging_body(PAGE, f"user{n % 3}", {"message": {"mid": mid, "text": "hello"}},
                                  timestamp=now)
            assert relay.post(body)[0] == 200
            wait_for(lambda mid=mid: seen.update(r["mid"] for r in tail.read()
                                                 if r["hydration"] == "complete") or mid in seen,
                     timeout=20, interval=0.002, message=f"the record of {mid}")
            latencies.append(time.perf_counter() - began)
    return latencies


def hammer(url: str, signed: list[tuple[bytes, str]],
           threads: int = THREADS) -> tuple[list[float], float, int]:
    """POST every body from `threads` threads (a Session each); latencies, wall seconds, non-200 count."""
    def client(chunk: list[tuple[bytes, str]]) -> tuple[list[float], int]:
        session, latencies, failed = requests.Session(), [], 0
        for body, signature in chunk:
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
            began = time.perf_counter()
            status = session.post(url, data=body, headers=headers, timeout=10).status_code
            latencies.append(time.perf_counter() - began)
            failed += status != 200
        return latencies, failed
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(client, [signed[i::threads] for i in range(threads)]))
    seconds = time.perf_counter() - began
    return [x for latencies, _ in results for x in latencies], seconds, sum(f for _, f in results)


def ack_row(name: str, url: str, signed: list[tuple[bytes, str]], threads: int = THREADS) -> list:
    """Warm up, then measure one server; a table row."""
    hammer(url, signed[:WARM_UP], threads)
    latencies, seconds, failed = hammer(url, signed[WARM_UP:], threads)
    return [f"{name}, {threads} client(s)", len(latencies), failed, ms(statistics.median(latencies)),
            ms(percentile(latencies, 90)), f"{len(latencies) / seconds:.0f}"]


def ack_rows(name: str, url: str, prefix: str, posts: int) -> list[list]:
    """One request at a time (latency), then THREADS at once (throughput)."""
    return [ack_row(name, url, sized_bodies(f"{prefix}1", posts // 4 + WARM_UP), threads=1),
            ack_row(name, url, sized_bodies(prefix, posts + WARM_UP))]


def ms(seconds: float) -> str:
    """Seconds as milliseconds with one decimal."""
    return f"{seconds * 1000:.1f}"


def bare_server() -> tuple[subprocess.Popen, str]:
    """bench/bare_app.py on gunicorn (sync, WEB_WORKERS workers) on a free port; process and URL."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--workers", str(WEB_WORKERS), "--worker-class", "sync",
               "--bind", f"127.0.0.1:{port}", "bench.bare_app:create_app()"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BARE_APP_SECRETS": f"{SECRET},second-secret"}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(url + "/healthz"), timeout=30, message="the bare app")
    return process, url


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def main() -> None:
    """Measure the bare baseline, then inbox-relay end to end and at the ack; print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer deliveries")
    quick = parser.parse_args().quick
    singles, posts = (20, 800) if quick else (60, 3000)
    print(f"ack: {THREADS} client threads, {posts} signed POSTs of ~{BODY_BYTES} bytes "
          f"(+{WARM_UP} warm-up), gunicorn sync x{WEB_WORKERS}; "
          f"end to end: {singles} single `read` deliveries")
    process, url = bare_server()
    try:
        assert post(url + "/webhook", read_body("check"))[0] == 200
        bare = ack_rows("bare Flask + HMAC", url + "/webhook", "bare", posts)
    finally:
        process.terminate()
        process.wait(20)
    relay = RelayProcess(lambda d: write_config(d / "inbox-relay.toml", graph_url="http://127.0.0.1:9",
                                                accounts=[{"page_id": PAGE, "access_token": "unused"}]))
    try:
        relay.start()
        e2e = end_to_end(relay, singles)
        ours = ack_rows("inbox-relay", relay.url + "/webhook", "ack", posts)
    finally:
        relay.cleanup()
    hydrated = hydrated_end_to_end(max(singles // 3, 10))
    print("\nPOST to record in the jsonl file, one delivery at a time:")
    print(table(["event", "deliveries", "median ms", "p90 ms", "min ms", "max ms"],
                [[name, len(x), ms(statistics.median(x)), ms(percentile(x, 90)), ms(min(x)), ms(max(x))]
                 for name, x in (("read (no Graph call)", e2e), ("message, hydrated", hydrated))]))
    print("\nPOST /webhook answered 200:")
    print(table(["server", "requests", "non-200", "median ms", "p90 ms", "req/s"], [*ours, *bare]))
    for (mine, base) in zip(ours, bare, strict=True):
        ratio = [float(mine[i]) / float(base[i]) for i in (5, 3, 4)]
        print(f"inbox-relay / bare, {mine[0].split(', ')[1]}: throughput {ratio[0]:.2f}x, "
              f"median latency {ratio[1]:.2f}x, p90 latency {ratio[2]:.2f}x")


if __name__ == "__main__":
    main()
