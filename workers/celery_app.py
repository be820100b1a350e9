"""The Celery app that `celery -A workers.celery_app worker` loads; it reads INBOX_RELAY_CONFIG.

This module is an entry point, not a library: importing it builds the app and may start the private
Redis, so nothing in inbox-relay imports it (`tests/unit/test_layout.py` checks that). Code that
needs a Celery app builds one with `workers.runtime.celery_setup.create_celery(settings)`.
"""

from __future__ import annotations

import logging
import os
import warnings

from celery import Celery
from celery.exceptions import SecurityWarning
from celery.signals import setup_logging

from workers import environment
from workers.priority import lower_process_priority_from_env
from workers.runtime import logs
from workers.runtime.celery_setup import create_celery
from workers.runtime.config import load_settings
from workers.runtime.data_dir import private_files
from workers.runtime.private_redis import PrivateRedisUnhealthy, ensure_embedded_redis

SUPERVISED_ENV = environment.SUPERVISED
# Celery refuses to run as root with pickle; with JSON only (ours) it warns in five lines at every
# start. Containers commonly run as root: the README's Security section says to use a user.
warnings.filterwarnings("ignore", category=SecurityWarning)
log = logging.getLogger(__name__)


def _app_from_environment() -> Celery:
    private_files()  # also when started by `celery -A workers.celery_app` directly
    lower_process_priority_from_env()  # under `inbox-relay run`: acks come first
    settings = load_settings()
    if settings.embedded and not os.environ.get(SUPERVISED_ENV):
        try:
            ensure_embedded_redis(settings)
        except PrivateRedisUnhealthy as exc:  # reported; the worker waits for it like any broker
            log.warning("%s", exc)
    return create_celery(settings)


@setup_logging.connect
def _logging(**_kwargs: object) -> None:
    """Celery leaves logging to us: the level and format the command line asked for."""
    logs.configure()


app = _app_from_environment()
