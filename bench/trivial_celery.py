"""Baseline for bench/e2e.py: a Celery app whose one task only counts itself, on BENCH_BROKER_URL.

    celery -A bench.trivial_celery worker --concurrency 2 --queues bench-trivial
"""

from __future__ import annotations

import os

import redis
from celery import Celery

QUEUE = "bench-trivial"
COUNTER = "bench-trivial:done"
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13")



def make_app(broker_url: str) -> Celery:
    """The baseline's Celery app on `broker_url`."""
    celery_app = Celery("bench_trivial", broker=broker_url)
    # The same delivery guarantees as inbox-relay's own worker: late acks, prefetch 1, JSON.
    celery_app.conf.update(task_acks_late=True, worker_prefetch_multiplier=1, task_default_queue=QUEUE,
                           task_ignore_result=True, task_serializer="json", accept_content=["json"],
                           worker_hijack_root_logger=False, worker_send_task_events=False)
    return celery_app


app = make_app(BROKER)


def counter(broker_url: str) -> redis.Redis:
    """The Redis behind a Celery broker URL (kombu's redis+socket:// is redis-py's unix://)."""
    return redis.Redis.from_url(broker_url.replace("redis+socket://", "unix://"))


_counter = counter(BROKER)


@app.task(name="bench.trivial")
def trivial(n: int) -> None:
    """Count one task done."""
    _counter.incr(COUNTER)
