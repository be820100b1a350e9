"""Issue 12 benchmark: signed POSTs per second and ack latency through `inbox-relay run` (web,
relay, worker and private Redis all running), against a bare Flask endpoint that only checks the
HMAC, served by the same gunicorn worker class and count, measured in the same run with wrk.

    cd /work/main && .venv/bin/python bench/ingest.py [--quick] [--connections 16]

Needs wrk (Debian: `apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import read_events_body, table  # noqa: E402
from tests.harness import SECRET, RelayProcess, free_port, wait_for, write_config  # noqa: E402
from webhook_app.signature import sign  # noqa: E402

PAGE = "100000000000001"
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", 2))  # `inbox-relay run` starts 2 by default
EVENTS_PER_DELIVERY = 3
DISTINCT_BODIES = 3000   # wrk cycles through these: each POST is a different delivery
TARGET_RATIO, TARGET_P99_MS = 0.6, 30.0


def delivery(n: int) -> bytes:
    """A delivery of EVENTS_PER_DELIVERY `read` events from distinct senders (no Graph call)."""
    return read_events_body(PAGE, [f"u{n}-{k}" for k in range(EVENTS_PER_DELIVERY)],
                            timestamp=int(time.time() * 1000))


def wrk_script(directory: Path, prefix: str) -> Path:
    """A wrk Lua script that cycles through DISTINCT_BODIES signed deliveries."""
    lines = ["local requests = {}", "local i = 0"]
    for n in range(DISTINCT_BODIES):
        body = delivery(hash((prefix, n)) & 0xFFFFFFF)
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(SECRET, body)}
        lines.append(f'requests[{n + 1}] = wrk.format("POST", "/webhook", {lua_table(headers)}, '
                     f'{lua_string(body.decode())})')
    lines += [f"function request() i = i % {DISTINCT_BODIES} + 1 return requests[i] end",
              "function done(summary, latency, requests)",
              '  io.write(string.format("RESULT %d %d %d %d %d %d %d\\n", summary.requests,',
              "    summary.duration, summary.errors.status + summary.errors.connect + summary.errors.read"
              " + summary.errors.write + summary.errors.timeout,",
              "    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))",
              "end"]
    path = directory / f"{prefix}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def lua_string(text: str) -> str:
    return json.dumps(text)  # JSON string escapes are valid Lua escapes for ASCII text


def lua_table(headers: dict[str, str]) -> str:
    return "{" + ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()) + "}"


def run_wrk(url: str, script: Path, *, connections: int, seconds: int) -> dict:
    """wrk's figures: requests/s, errors, latency percentiles in ms."""
    output = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                            capture_output=True, text=True, check=True).stdout
    found = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", output, re.M)
    if not found:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    count, micros, errors, p50, p90, p99, top = map(int, found.groups())
    if count == 0:
        raise RuntimeError(f"wrk sent no request:\n{output}")
    return {"requests": count, "rate": count / (micros / 1e6), "errors": errors,
            "p50": p50 / 1000, "p90": p90 / 1000, "p99": p99 / 1000, "max": top / 1000}


def bare_server() -> tuple[subprocess.Popen, str]:
    """bench/bare_app.py under the gunicorn worker class and count `inbox-relay run` uses."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--workers", str(WEB_WORKERS),
               "--worker-class", "webhook_app.server.ReadTimeoutGeventWorker",
               "--worker-connections", "1000", "--bind", f"127.0.0.1:{port}", "bench.bare_app:create_app()"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BARE_APP_SECRETS": f"{SECRET},second-secret"}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(url + "/healthz"), timeout=30, message="the bare app")
    return process, url


def _answers(url: str) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def measure(url: str, script: Path, *, connections: int, seconds: int) -> dict:
    """A short warm-up, then the measured run."""
    run_wrk(url, script, connections=connections, seconds=1)
    return run_wrk(url, script, connections=connections, seconds=seconds)


def row(name: str, figures: dict) -> list:
    """A table row: counts, then rate and latencies."""
    return [name, figures["requests"], figures["errors"], f"{figures['rate']:.0f}",
            *(f"{figures[key]:.1f}" for key in ("p50", "p90", "p99", "max"))]


def measure_bare(scratch: Path, connections: int, seconds: int) -> dict:
    """One measurement of the bare baseline, on a server started for it."""
    process, url = bare_server()
    try:
        return measure(url + "/webhook", wrk_script(scratch, "bare"), connections=connections,
                       seconds=seconds)
    finally:
        process.terminate()
        process.wait(20)


def measure_ours(scratch: Path, connections: int, seconds: int) -> dict:
    """One measurement of `inbox-relay run`, on a fresh system."""
    relay = RelayProcess(lambda d: write_config(d / "inbox-relay.toml", graph_url="http://127.0.0.1:9",
                                                accounts=[{"page_id": PAGE, "access_token": "unused"}]),
                         run_args=("--web-workers", str(WEB_WORKERS)))
    try:
        relay.start()
        return measure(relay.url + "/webhook", wrk_script(scratch, "ours"), connections=connections,
                       seconds=seconds)
    finally:
        relay.cleanup()


def main() -> None:
    """Rounds of bare baseline then inbox-relay; print each, the median ratio and the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of 5 s instead of three of 10 s")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench/ingest.py needs wrk: apt-get install wrk")
    rounds, seconds = (1, 5) if args.quick else (3, 10)
    print(f"wrk: 2 threads, {args.connections} connections, {rounds} round(s) of {seconds} s each after a "
          f"1 s warm-up; signed deliveries of {EVENTS_PER_DELIVERY} `read` events; gunicorn gevent "
          f"x{WEB_WORKERS}. Rounds alternate the two servers: this machine's speed drifts by 10-20%.")
    scratch = Path(tempfile.mkdtemp(prefix="ir-bench-"))
    rows, ratios, p99s, errors = [], [], [], 0
    try:
        for n in range(1, rounds + 1):
            bare = measure_bare(scratch, args.connections, seconds)
            ours = measure_ours(scratch, args.connections, seconds)
            rows += [row(f"inbox-relay run, round {n}", ours), row(f"bare Flask + HMAC, round {n}", bare)]
            ratios.append(ours["rate"] / bare["rate"])
            p99s.append(ours["p99"])
            errors += ours["errors"]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(table(["server", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows))
    ratio, p99 = statistics.median(ratios), statistics.median(p99s)
    print(f"\ninbox-relay / bare, median of {rounds} round(s): {ratio:.2f}x the rate (target >= "
          f"{TARGET_RATIO}); ack p99 {p99:.1f} ms (target < {TARGET_P99_MS:.0f})")
    met = ratio >= TARGET_RATIO and p99 < TARGET_P99_MS and errors == 0
    print("targets met" if met else "targets NOT met")


if __name__ == "__main__":
    main()
