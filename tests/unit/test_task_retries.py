"""Waiting is never failing: a task that has waited (for Graph budget, a handler, a store that is
full) more often than any cap still retries. Celery counts every `task.retry` in `retries`, so a
cap would turn a long budget wait into a lost message. The tasks run on an in-memory broker."""

from __future__ import annotations

import pytest
import redis
from celery import Celery
from celery.exceptions import Retry

from tests.harness import SentTasks, in_process_runtime
from workers.runtime.config import settings_from_dict
from workers.tasks import StageTask, later

MANY = 500  # far past Celery's default cap (3) and the old one (20)


@pytest.fixture
def app():
    app = Celery("test-retries", broker="memory://", set_as_current=False)
    yield app
    app.close()


def _task(app: Celery):
    @app.task(bind=True, base=StageTask, name="test.wait", shared=False)
    def waiting(self):
        return None
    waiting.push_request(id="task-1", retries=MANY, called_directly=False)
    return waiting


def test_a_budget_wait_after_many_earlier_waits_is_still_a_retry(app):
    task = _task(app)
    assert isinstance(later(task, countdown=0.5), Retry)
    with app.connection_for_write() as connection:
        assert connection.default_channel.queue_declare("celery", passive=True).message_count == 1


def test_a_store_outage_after_many_earlier_waits_is_still_a_retry(app, store):
    task = _task(app)
    settings = settings_from_dict({"meta": {"app_secrets": ["s"], "verify_token": "t"}}, env={})
    rt = in_process_runtime(store, settings, SentTasks())
    bugs: list[Exception] = []

    def stage():
        raise redis.ConnectionError("Redis is restarting")

    with pytest.raises(Retry):
        task.run_stage(rt, stage, bugs.append)
    assert bugs == []
