"""Syncs and gap sweeps as Celery tasks: one task at a time per account and mode, a slice each."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from workers.scheduler import SYNC_TASK
from workers.sync.job import SyncJob
from workers.sync.run import advance, start_or_resume
from workers.sync.step import SWEEP_GRACE

if TYPE_CHECKING:
    from workers.stage import Runtime

log = logging.getLogger(__name__)


def _flag(page_id: str, mode: str) -> str:
    return f"sync|{mode}|{page_id}"


def queue(rt: Runtime, job: SyncJob) -> bool:
    """Checkpoint `job` and start its task; False when a task already runs it."""
    if not rt.store.flags.claim(_flag(job.page_id, job.mode), ttl=rt.settings.queue.visibility_timeout):
        return False
    rt.store.sync_jobs.save(job.page_id, job.mode, job.to_dict())
    rt.scheduler.send_task(SYNC_TASK, args=(job.page_id, job.mode), countdown=0)
    return True


def continue_for(rt: Runtime, page_id: str, mode: str, *, seconds: float) -> float | None:
    """Advance the checkpointed job for up to `seconds`: the wait before the next task, or None
    when the job is done (a worker never sleeps on the budget: a later task goes on)."""
    saved = rt.store.sync_jobs.load(page_id, mode)
    if not saved or saved.get("finished_at"):
        release(rt, page_id, mode)
        return None
    job = SyncJob.from_dict(saved)
    deadline = time.monotonic() + seconds
    while not job.done:
        wait = advance(rt, job)
        if wait or time.monotonic() > deadline:
            rt.store.flags.hold(_flag(page_id, mode), ttl=wait + rt.settings.queue.visibility_timeout)
            return wait
    _finished(rt, job)
    return None


def _finished(rt: Runtime, job: SyncJob) -> None:
    if job.mode == "sweep":
        rt.store.sync_jobs.mark_swept(job.page_id, "all", job.started_at - SWEEP_GRACE)
        rt.store.sync_jobs.count_found(job.page_id, job.new_messages)
        if job.new_messages:
            log.warning("sweep account=%s found %d message(s) no webhook brought", job.page_id,
                        job.new_messages)
    log.info("%s account=%s done: %d conversations, %d messages, %d calls", job.mode, job.page_id,
             job.conversations, job.messages, job.calls)
    release(rt, job.page_id, job.mode)


def release(rt: Runtime, page_id: str, mode: str) -> None:
    """No task runs the job any more."""
    rt.store.flags.release(_flag(page_id, mode))


def start_due_sweeps(rt: Runtime) -> None:
    """Start a gap sweep for each account whose last one is `[sync] sweep_every` old."""
    every = rt.settings.sync.sweep_every
    if not every:
        return
    for account in rt.settings.accounts:
        since = rt.store.sync_jobs.swept_until(account.page_id, "all")
        if time.time() - since >= every:
            queue(rt, start_or_resume(rt, account.page_id, since=since, mode="sweep"))
