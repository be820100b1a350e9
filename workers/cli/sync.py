"""`inbox-relay sync`: bring an account's past conversations in, with progress, resumable."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime

import click

from workers.cli.common import config_option, settings_or_exit
from workers.errors import AdminError, RelayError
from workers.runtime import logs
from workers.sync import background as background_sync
from workers.sync.job import SyncJob
from workers.sync.run import run_to_end, start_or_resume


def _since(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-01-31 or 2026-01-31T12:00",
                                 param_hint="--since") from None


@click.command("sync")
@config_option
@click.option("--account", "page_id", required=True, help="The page id (its Instagram account too).")
@click.option("--platform", type=click.Choice(["messenger", "instagram", "all"]), default="all",
              show_default=True, help="Which inbox to bring in.")
@click.option("--since", help="Stop at conversations not updated since this date (ISO 8601).")
@click.option("--max-conversations", type=click.IntRange(min=1), help="Stop after this many.")
@click.option("--dry-run", is_flag=True, help="Count what a sync would read, and the calls it costs.")
@click.option("--background", is_flag=True, help="Queue the sync as a task; `status` shows it.")
@click.option("--full", is_flag=True,
              help="Read every conversation again, not only those updated since the last sync.")
def sync(config, page_id, platform, since, max_conversations, dry_run, background, full) -> None:
    """Bring past conversations in: every message becomes an event with "source": "sync".

    Messages go through the same deduplication and handlers as live ones: a message that came by
    webhook too reaches each handler once. The 20 newest messages of each conversation come with
    details; older ones with their id and time ("hydration": "unavailable"). Live messages keep
    priority on the account's call budget. Interrupted (Ctrl-C), it goes on where it stopped
    when run again. Run again after it finished, it reads only the conversations updated since
    the last one started (a call or two when none was); --full reads everything again. A message a
    webhook brought first went to the handlers configured then, and is not delivered again. A dry
    run counts the conversations, and the sync after it shows a total and an ETA. Exits 0 once
    every message is queued for the handlers.
    """
    rt = _runtime(settings_or_exit(config))
    if logs.level() != "debug":  # a line per delivered event would bury the progress bar
        logging.getLogger("workers.delivery.drain").setLevel(logging.WARNING)
    try:
        if dry_run:
            return _dry_run(rt, page_id, platform, since)
        job = start_or_resume(rt, page_id, platform=platform, since=_since(since),
                              max_conversations=max_conversations, full=full)
        if job.updates_since is not None and not job.calls:  # on stderr: stdout is for the summary
            click.echo(f"{job.page_id} was synced before: reading only the conversations updated in the "
                       f"last {_ago(job.updates_since)} (about {len(job.scope)} call(s) if none was; "
                       "--full reads everything again, e.g. for a handler added since)", err=True)
        if background:
            if not background_sync.queue(rt, job):
                raise click.ClickException(f"a sync of {job.page_id} already runs in the background")
            return click.echo(f"sync of {job.page_id} queued; `inbox-relay status` shows its progress")
        job = _with_progress(rt, job)
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.ClickException("stopped; run the same command again to go on where it stopped") from None
    click.echo(json.dumps(_summary(job)) if not sys.stdout.isatty() else _line(job))


def _runtime(settings):
    from workers.cli.common import private_redis_for_this_command
    from workers.runtime.celery_setup import create_celery
    from workers.runtime.context import build_runtime

    private_redis_for_this_command(settings)
    return build_runtime(settings, create_celery(settings).send_task)


def _write_log(rt) -> None:
    """The event log gets the synced events as the sync goes (a worker's task does it at its end)."""
    if rt.journal is not None:
        rt.journal.flush()


def _with_progress(rt, job: SyncJob) -> SyncJob:
    if not sys.stderr.isatty():
        return run_to_end(rt, job, on_step=lambda current: _write_log(rt))
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[counts]}"),
               TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        bar = progress.add_task(f"sync {job.page_id}", total=None, counts="")

        def show(current: SyncJob) -> None:
            # The count a dry run or the last full sync made, else what the listing has shown so far
            counted = current.conversations + (0 if current.listing_done else 25)
            total = current.expected if current.updates_since is None else None  # a re-run reads few
            known = max(total or 0, counted) if current.platforms else current.conversations
            progress.update(bar, completed=current.conversations, total=max(known, 1),
                            counts=f"{current.conversations} conversations, {current.messages} "
                                   f"messages, {current.calls} calls")
        def step(current: SyncJob) -> None:
            show(current)
            _write_log(rt)
        done = run_to_end(rt, job, on_step=step)
        show(done)
        progress.update(bar, total=max(done.conversations, 1), completed=max(done.conversations, 1))
        return done


def _summary(job: SyncJob) -> dict:
    elapsed = (job.finished_at or time.time()) - job.started_at
    return {"account": job.page_id, "conversations": job.conversations, "messages": job.messages,
            "new_messages": job.new_messages, "brought_before": job.brought_before, "calls": job.calls,
            "seconds": round(elapsed, 1), "updated_since": job.updates_since}


def _line(job: SyncJob) -> str:
    s = _summary(job)
    scope = "updated " if job.updates_since is not None else ""
    line = (f"synced {s['conversations']} {scope}conversations, {s['messages']} messages "
            f"({s['new_messages']} new) in {s['calls']} calls, {s['seconds']}s")
    if job.brought_before:
        line += (f"; {job.brought_before} had come by webhook or sweep first: they went to the handlers "
                 "configured then and are not delivered again, so a handler added since does not get them")
    return line


def _ago(epoch: float) -> str:
    seconds = max(0, int(time.time() - epoch))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _dry_run(rt, page_id: str, platform: str, since: str | None) -> None:
    from workers.sync.estimate import estimate

    try:
        found = estimate(rt, page_id, platform=platform, since=_since(since))
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"would read {found['conversations']} conversations with {found['messages']} messages "
               f"in about {found['calls']} calls ({found['seconds']:.0f}s at the account's budget)")
