"""`inbox-relay events list|show|replay`: the event log, what happened to every event."""

from __future__ import annotations

import sys

import click

from workers.cli.common import config_option, echo_json, json_option, settings_or_exit
from workers.errors import AdminError, RelayError
from workers.events.log import EventLog
from workers.events.queries import OUTCOMES, Filters, list_events, show_event, since_epoch
from workers.records import KINDS, Event
from workers.settings import Settings

SOURCES = ("webhook", "sync", "sweep")


@click.group("events")
def events() -> None:
    """The event log: every event of the last `[events] keep` and what each handler made of it."""


def _since(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return since_epoch(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None


def _journal(config: str | None) -> tuple[EventLog, Settings]:
    from workers.runtime.context import event_log_for

    settings = settings_or_exit(config)
    journal = event_log_for(settings)
    try:
        journal.database()
    except RelayError as exc:  # an unreachable database, named without its password
        raise click.ClickException(str(exc)) from None
    return journal, settings


@events.command("list")
@config_option
@click.option("--kind", type=click.Choice(KINDS), help="Only events of this kind.")
@click.option("--platform", type=click.Choice(["messenger", "instagram"]), help="Only this platform.")
@click.option("--account", metavar="ID", help="Only events of this account (page or Instagram id).")
@click.option("--handler", metavar="NAME", help="Only events this handler has tried.")
@click.option("--outcome", type=click.Choice(OUTCOMES), help="Only events where some handler's latest "
              "outcome is this (with --handler: that handler's).")
@click.option("--source", type=click.Choice(SOURCES), help="Only events that came this way.")
@click.option("--mid", metavar="MID", help="Only events about this message id.")
@click.option("--since", "since_text", metavar="WHEN",
              help="Only events logged since: 15m, 2h, 7d (ago) or a date.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@json_option
def list_command(config, since_text, limit, as_json, **filters) -> None:
    """The events that match, newest first: a table on a terminal, or --json.

    \b
      inbox-relay events list --mid m_AbC123
      inbox-relay events list --outcome dead_letter --since 2h
    """
    journal, settings = _journal(config)
    found = list_events(journal, Filters(**filters, since=_since(since_text), limit=limit))
    for event in found:  # a handler that takes the event and has not tried it yet: pending
        for handler in settings.handlers:
            if handler.kinds is None or event["kind"] in handler.kinds:
                event["handlers"].setdefault(handler.name, "pending")
    if as_json or not sys.stdout.isatty():
        return echo_json(found)
    _table(found)


def _table(found: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("received", "id", "kind", "platform", "account", "mid", "source", "hydration", "handlers")
    for event in found:
        handlers = ", ".join(f"{name}: {outcome}" for name, outcome in event["handlers"].items()) or "-"
        table.add_row(event["received_at"], event["id"], event["kind"], event["platform"] or "-",
                      event["account_id"] or "-", event["mid"] or "-", event["source"] or "-",
                      event["hydration"] or "-", handlers)
    Console().print(table)
    if not found:
        click.echo("no event matches (the log keeps [events] keep, 7 days by default)")


@events.command("show")
@config_option
@click.argument("event_id")
@json_option
def show_command(config, event_id, as_json) -> None:
    """One event: its record (with the hydrated message) and every attempt of every handler."""
    journal, _ = _journal(config)
    try:
        found = show_event(journal, event_id)
    except RelayError as exc:  # a record the configured keys do not open
        raise click.ClickException(str(exc)) from None
    if found is None:
        raise click.ClickException(f"no event {event_id} in the event log (older than [events] keep, "
                                   "or never logged)")
    if as_json or not sys.stdout.isatty():
        return echo_json(found)
    echo_json(found["event"])
    for attempt in found["attempts"]:
        duration = f" in {attempt['duration_ms']:.0f} ms" if attempt["duration_ms"] is not None else ""
        error = f": {attempt['error']}" if attempt["error"] else ""
        click.echo(f"{attempt['at']}  {attempt['handler']} attempt {attempt['attempt']}: "
                   f"{attempt['outcome']}{duration}{error}")


@events.command("replay")
@config_option
@click.argument("event_ids", nargs=-1, required=True, metavar="ID...")
@click.option("--handler", metavar="NAME", help="Only to this handler [default: every handler that "
              "takes the event's kind].")
def replay_command(config, event_ids, handler) -> None:
    """Hand logged events to their handlers again, through the normal queues (a worker delivers
    them); each replay is logged as an attempt."""
    from workers.cli.dead_letters import _runtime
    from workers.delivery.replay import replay_event

    journal, settings = _journal(config)
    records = []
    for event_id in event_ids:
        found = show_event(journal, event_id)
        if found is None:
            raise click.ClickException(f"no event {event_id} in the event log")
        records.append(Event.from_dict(found["event"]))
    rt = _runtime(settings)
    try:
        for event in records:
            names = replay_event(rt, event, handler)
            click.echo(f"{event.id}: queued again for {', '.join(names) or 'no handler (none takes it)'}")
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if rt.journal is not None:
            rt.journal.flush()
