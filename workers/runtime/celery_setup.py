"""Celery configured for at-least-once delivery: late acks, prefetch 1, socket timeouts."""

from __future__ import annotations

from celery import Celery

from workers.runtime import redis_transport
from workers.scheduler import QUEUE
from workers.settings import Settings


def create_celery(settings: Settings) -> Celery:
    """A Celery app on the configured broker: late acks, prefetch 1, socket timeouts."""
    redis_transport.install()  # a worker outlives a Redis that is full or gone
    app = Celery("inbox_relay", broker=settings.celery_broker_url, include=["workers.tasks"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # Longer than any countdown a task asks for, or Redis would hand it out twice.
            "visibility_timeout": settings.queue.visibility_timeout,
            # Look for tasks of killed workers every 5 s rather than every 100 s.
            "unacked_restore_interval": 5, "unacked_restore_throttle": 1,
            "socket_timeout": 10, "socket_connect_timeout": 5, "max_retries": 3,
        },
        broker_heartbeat=30,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # A task still running past the visibility timeout would be handed out twice.
        task_soft_time_limit=settings.queue.visibility_timeout * 0.5,
        task_time_limit=settings.slot_lease,  # a handler slot is held no longer
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app
