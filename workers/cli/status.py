"""`inbox-relay status`: what needs attention: paused or throttled accounts, waiting work, dead letters."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict

import click

from workers.cli.common import (
    config_option,
    echo_json,
    echo_table,
    json_option,
    settings_or_exit,
    store_or_exit,
    when,
)
from workers.connect.tokens import token_state
from workers.records import HydrationQueue, parse_queue
from workers.runtime.components import board_path, read_board
from workers.settings import Settings
from workers.state import Store

MEMORY_WARNING = 0.8  # of maxmemory: past it, Redis refuses writes soon


def status_report(settings: Settings, store: Store) -> dict:
    """Accounts with their pause and throttling state, queue lengths by stage, dead letters."""
    accounts = []
    for account in settings.accounts:
        paused = store.accounts.paused(account.page_id) or {}
        accounts.append({"page_id": account.page_id, "instagram_id": account.instagram_id,
                         "paused": bool(paused), "paused_reason": paused.get("reason"),
                         "paused_since": float(paused["since"]) if paused else None,
                         "throttled_for_seconds": store.budgets.blocked_for(account.page_id),
                         "hydration_given_up": store.accounts.given_up(account.page_id),
                         "sync": _job(store, account.page_id, "sync"),
                         "sweep": _job(store, account.page_id, "sweep"),
                         "sweep_found": store.sync_jobs.found(account.page_id),
                         "graph_trouble": store.accounts.graph_trouble(account.page_id),
                         "login": account.login, "token": token_state(store, account)})
    waiting: Counter[str] = Counter()
    for name in store.queues.names():
        queue = parse_queue(name)
        stage = "hydration" if isinstance(queue, HydrationQueue) else f"handler {queue.handler}"
        waiting[stage] += store.queues.length(name)
    used, limit = store.health.memory()
    return {"accounts": accounts, "handlers": [_handler(settings, store, h.name) for h in settings.handlers],
            "waiting": dict(waiting), "dead_letters": store.dead_letters.count(),
            "failed_deliveries": store.failures.total(),
            "redis_memory": {"used_bytes": used, "max_bytes": limit,
                             "warning": limit > 0 and used > MEMORY_WARNING * limit}}


def components_report(settings: Settings) -> list[dict]:
    """The parts `inbox-relay run` supervises on this data_dir, if it runs."""
    return [{**asdict(part), "summary": part.summary()} for part in read_board(board_path(settings))]


def _handler(settings: Settings, store: Store, name: str) -> dict:
    state = store.breakers.state(name)
    config = next(h for h in settings.handlers if h.name == name)
    return {"name": name, "paused": state.paused_for > 0, "paused_for_seconds": state.paused_for,
            "pauses_in_a_row": state.pauses, "failures_in_a_row": state.failures,
            "failing_since": state.since, "in_flight": store.slots.in_use(name),
            "concurrency": config.concurrency}


@click.command("status")
@config_option
@json_option
def status(config, as_json) -> None:
    """Show accounts (paused for an invalid token? throttled?), events waiting, dead letters."""
    settings = settings_or_exit(config)
    components = components_report(settings)
    if not as_json:  # before the store is asked: the store may be the part that is down
        for part in components:
            click.echo(f"{part['name']}: {part['summary']}")
    report = status_report(settings, store_or_exit(settings))
    if as_json:
        return echo_json({**report, "components": components})
    echo_table(["ACCOUNT", "INSTAGRAM", "STATE", "SINCE"],
               [[a["page_id"], a["instagram_id"] or "-", _state(a), when(a["paused_since"])]
                for a in report["accounts"]])
    for handler in report["handlers"]:
        if handler["paused"] or handler["failures_in_a_row"]:
            click.echo(_handler_line(handler))
    for account in report["accounts"]:
        for mode in ("sync", "sweep"):
            if account[mode]:
                click.echo(_job_line(account["page_id"], mode, account[mode]))
        if account["graph_trouble"]:
            click.echo(_trouble_line(account["page_id"], account["graph_trouble"]))
        if account["token"]:
            click.echo(_token_line(account["page_id"], account["token"]))
        if account["sweep_found"]:
            click.echo(f"{account['page_id']}: the sweep found {account['sweep_found']} message(s) "
                       "no webhook brought")
    for stage, count in sorted(report["waiting"].items()):
        click.echo(f"waiting for {stage}: {count}")
    click.echo(f"dead letters: {report['dead_letters']}")
    memory = report["redis_memory"]
    if memory["warning"]:
        click.echo(f"WARNING: Redis uses {memory['used_bytes'] / 2**20:.0f} MiB of its maxmemory "
                   f"{memory['max_bytes'] / 2**20:.0f} MiB: raise maxmemory, or replay or purge "
                   "dead letters (`inbox-relay dead-letters list`)")
    click.echo(f"failed deliveries: {report['failed_deliveries']} "
               "(`inbox-relay deliveries list --failed` on the web node)")


def _job(store: Store, page_id: str, mode: str) -> dict | None:
    job = store.sync_jobs.load(page_id, mode)
    if job is None:
        return None
    return {name: job.get(name) for name in ("conversations", "messages", "new_messages", "calls",
                                             "started_at", "finished_at")}


def _trouble_line(page_id: str, trouble: dict) -> str:
    next_try = max(0.0, trouble["next_try"] - time.time())
    return (f"{page_id}: Graph API failing (last answer {when(trouble['at'])}): {trouble['where']}: "
            f"{trouble['message'][:200]}; next try in {next_try:.0f}s; messages waiting since then "
            f"are delivered without details from {when(trouble['gives_up_at'])}")


def _token_line(page_id: str, token: dict) -> str:
    """An Instagram Login token: when it expires, and a refresh the API refused."""
    expires = f"expires {when(token['expires_at'])}" if token.get("expires_at") else "expiry not known yet"
    line = f"{page_id}: Instagram Login token {expires}"
    if token.get("error"):
        line += f"; the last refresh: {token['error']}; next try {when(token.get('next_try'))}"
    return line


def _state(account: dict) -> str:
    if account["paused"]:
        return f"PAUSED ({account['paused_reason']}): replace its access_token"
    if account["throttled_for_seconds"]:
        return f"throttled for {account['throttled_for_seconds']:.0f}s"
    return "ok"


def _handler_line(handler: dict) -> str:
    if handler["paused"]:
        state = (f"PAUSED for {handler['paused_for_seconds']:.0f}s more (pause {handler['pauses_in_a_row']} "
                 "in a row): its events wait")
    else:
        state = f"{handler['failures_in_a_row']} failed attempt(s) in a row"
    return (f"handler {handler['name']}: {state}; failing since {when(handler['failing_since'])}, "
            f"{handler['in_flight']} of {handler['concurrency']} slot(s) in use")


def _job_line(page_id: str, mode: str, job: dict) -> str:
    state = f"finished {when(job['finished_at'])}" if job["finished_at"] else "running"
    return (f"{page_id}: {mode} {state}: {job['conversations']} conversations, {job['messages']} "
            f"messages ({job['new_messages']} new), {job['calls']} calls")
