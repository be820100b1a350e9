"""Running a sync job to the end: in the command's own process, or step by step in Celery tasks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from workers.errors import AdminError, GraphTokenInvalid
from workers.records import Platform
from workers.sync.job import Mode, SyncJob
from workers.sync.step import step

if TYPE_CHECKING:
    from workers.stage import Runtime

RERUN_OVERLAP = 60.0  # seconds: Graph's updated_time has whole seconds, and clocks differ
ESTIMATE = "estimate"  # where a dry run keeps what it counted, beside the jobs
PLATFORMS: dict[str, list[Platform]] = {"messenger": ["messenger"], "instagram": ["instagram"],
                                        "all": ["messenger", "instagram"]}


def start_or_resume(rt: Runtime, page_id: str, *, platform: str = "all", since: float | None = None,
                    max_conversations: int | None = None, mode: Mode = "sync",
                    full: bool = False) -> SyncJob:
    """The checkpointed job of this account when it has the same scope, else a new one. After a
    finished sync of the same scope, the new one reads only the conversations updated since that
    one started (what it read is known), unless `full`."""
    account = rt.settings.account_for(page_id)
    if account is None:
        raise AdminError(f"no [[accounts]] entry for {page_id}")
    platforms = [p for p in PLATFORMS[platform] if p in account.platforms]
    saved = rt.store.sync_jobs.load(account.page_id, mode)
    same_scope = bool(saved) and _same_scope(saved or {}, platforms, since, max_conversations)
    if saved and same_scope and not saved.get("finished_at"):
        return SyncJob.from_dict(saved)
    job = SyncJob(page_id=account.page_id, platforms=platforms, scope=list(platforms), mode=mode, since=since,
                  max_conversations=max_conversations, started_at=time.time())
    job.expected = _expected_conversations(rt, job, saved if same_scope else None)
    if saved and same_scope and mode == "sync" and not full:
        job.updates_since = saved["started_at"] - RERUN_OVERLAP
    return job


def _same_scope(saved: dict, platforms: list[Platform], since: float | None,
                max_conversations: int | None) -> bool:
    return (saved.get("since") == since and saved.get("max_conversations") == max_conversations
            and saved.get("scope", saved.get("platforms")) == platforms)


def _expected_conversations(rt: Runtime, job: SyncJob, previous: dict | None) -> int | None:
    """How many conversations the job will list, if a full sync or a dry run counted them."""
    if previous and previous.get("finished_at"):
        full = previous.get("updates_since") is None
        return (int(previous.get("conversations") or 0) if full else previous.get("expected")) or None
    counted = rt.store.sync_jobs.load(job.page_id, ESTIMATE)
    if counted and counted.get("scope") == job.scope and counted.get("since") == job.since:
        return int(counted.get("conversations") or 0) or None
    return None


def advance(rt: Runtime, job: SyncJob) -> float:
    """One step, checkpointed; returns the wait before the next (0 also when the job is done)."""
    account = rt.settings.account_for(job.page_id)
    if account is None:
        raise AdminError(f"no [[accounts]] entry for {job.page_id}")
    token = rt.token_for(account)
    try:
        wait = step(rt, job, account)
    except GraphTokenInvalid as exc:
        if rt.token_for(account) != token:  # refreshed meanwhile: the next step carries the new one
            return 0.0
        raise AdminError(f"account {job.page_id}: the access token is invalid (code {exc.code}); "
                         "replace it and run the sync again: it goes on where it stopped") from None
    if job.done and job.finished_at is None:
        job.finished_at = time.time()
    rt.store.sync_jobs.save(job.page_id, job.mode, job.to_dict())
    return wait


def run_to_end(rt: Runtime, job: SyncJob, *, on_step: Callable[[SyncJob], None] = lambda job: None,
               sleep: Callable[[float], None] = time.sleep) -> SyncJob:
    """Advance until every message is queued for the handlers (Ctrl-C stops between steps)."""
    while not job.done:
        wait = advance(rt, job)
        on_step(job)
        if wait:
            sleep(wait)
    return job
