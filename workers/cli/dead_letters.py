"""`inbox-relay dead-letters ...`: list, show, replay and purge the events handlers could not take."""

from __future__ import annotations

import json

import click

from workers.cli.common import (
    Duration,
    body_option,
    config_option,
    echo_json,
    echo_table,
    json_option,
    private_redis_for_this_command,
    settings_or_exit,
    store_or_exit,
    when,
)
from workers.delivery import dead_letters as admin
from workers.errors import AdminError, RelayError
from workers.settings import Settings

EVENT_COLUMNS = ("id", "kind", "platform", "account_id", "sender_id", "recipient_id", "timestamp",
                 "mid", "conversation_id", "hydration", "hydration_error")


def filter_options(command):
    """The options that select dead letters, shared by list, replay and purge."""
    for option in reversed([
        click.option("--handler", help="Only letters of this handler name."),
        click.option("--kind", help="Only events of this kind (message, reaction, ...)."),
        click.option("--account", "account_id", help="Only events of this page or Instagram account id."),
        click.option("--older-than", type=Duration(),
                     help="Only letters that failed at least this long ago."),
        click.option("--newer-than", type=Duration(), help="Only letters that failed at most this long ago."),
    ]):
        command = option(command)
    return command


def _runtime(settings: Settings):
    from workers.runtime.celery_setup import create_celery
    from workers.runtime.context import build_runtime

    private_redis_for_this_command(settings)
    celery_app = create_celery(settings)  # replay schedules drain tasks on this broker
    try:
        return build_runtime(settings, celery_app.send_task)
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None


def _selection(handler: str | None, event_id: str | None, where: admin.LetterFilter,
               everything: bool) -> admin.LetterFilter | None:
    """None means "the one letter named by HANDLER EVENT_ID"; else the filter to apply."""
    if handler or event_id:
        if not (handler and event_id) or not where.is_empty or everything:
            raise click.UsageError("give HANDLER and EVENT_ID together, or filters / --all instead")
        return None
    if where.is_empty and not everything:
        raise click.UsageError("say which letters: HANDLER EVENT_ID, a filter option, or --all")
    return where


@click.group("dead-letters", short_help="List, show, replay or purge dead letters.")
def dead_letters() -> None:
    """Events a handler could not take: list, show, replay or purge them."""


@dead_letters.command("list")
@config_option
@filter_options
@json_option
def list_letters(config, as_json, **filters) -> None:
    """List dead letters, oldest failure first (never their message text)."""
    letters = admin.list_dead_letters(store_or_exit(settings_or_exit(config)).dead_letters,
                                     admin.LetterFilter(**filters))
    if as_json:
        return echo_json([admin.letter_summary(letter) for letter in letters])
    rows = [[letter.handler, letter.event_id, letter.event.get("kind"), letter.event.get("account_id"),
             letter.attempts, when(letter.failed_at), letter.error[:60]] for letter in letters]
    echo_table(["HANDLER", "EVENT", "KIND", "ACCOUNT", "ATTEMPTS", "FAILED", "ERROR"], rows)
    click.echo(f"{len(letters)} dead letter(s)")


@dead_letters.command("show")
@config_option
@click.argument("handler")
@click.argument("event_id")
@json_option
@body_option
def show_letter(config, handler, event_id, as_json, show_body) -> None:
    """Show one dead letter: error, attempts and event.

    The event's message text and raw webhook item are left out unless --show-body is given.
    """
    try:
        letters = store_or_exit(settings_or_exit(config)).dead_letters
        letter = admin.get_dead_letter(letters, handler, event_id)
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    summary = admin.letter_summary(letter, with_body=show_body)
    if as_json:
        return echo_json(summary)
    event = summary["event"]
    lines = [("handler", letter.handler), ("attempts", letter.attempts),
             ("first failed", when(letter.first_failed_at)),
             ("failed", when(letter.failed_at)), ("error", letter.error),
             *((f"event.{name}", event.get(name)) for name in EVENT_COLUMNS)]
    for label, value in lines:
        click.echo(f"{label + ':':<24}{'-' if value is None else value}")
    if show_body:
        click.echo("event.message:          " + json.dumps(event.get("message"), ensure_ascii=False))
        click.echo("event.raw:              " + json.dumps(event.get("raw"), ensure_ascii=False))


def selection_options(verb: str):
    """One letter by HANDLER EVENT_ID, or several by filters or --all (replay and purge)."""
    def decorate(command):
        all_option = click.option("--all", "everything", is_flag=True, help=f"{verb} every dead letter.")
        command = all_option(command)
        command = filter_options(command)
        command = click.argument("letter_event", metavar="EVENT_ID]", required=False)(command)
        return click.argument("letter_handler", metavar="[HANDLER", required=False)(command)
    return decorate


@dead_letters.command("replay")
@config_option
@selection_options("Replay")
def replay_letters(config, letter_handler, letter_event, everything, **filters) -> None:
    """Queue dead-lettered events again for their handler.

    Each event goes back to the handler that failed it, and to no other; its dead letter is then
    removed. Name one letter (HANDLER EVENT_ID) or select several with filters or --all:

    \b
      inbox-relay dead-letters replay crm evt_2b1dab61bb7f618c
      inbox-relay dead-letters replay --handler crm --newer-than 2h
    """
    where = _selection(letter_handler, letter_event, admin.LetterFilter(**filters), everything)
    rt = _runtime(settings_or_exit(config))
    try:
        if where is None:
            letter = admin.get_dead_letter(rt.store.dead_letters, letter_handler, letter_event)
            admin.replay_dead_letter(rt, letter)
            count = 1
        else:
            count = admin.replay_dead_letters(rt, where)
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"replayed {count} dead letter(s)")


@dead_letters.command("purge")
@config_option
@selection_options("Purge")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def purge_letters(config, letter_handler, letter_event, everything, yes, **filters) -> None:
    """Delete dead letters for good.

    Name one letter (HANDLER EVENT_ID) or select several with filters or --all; asks first
    unless --yes:

    \b
      inbox-relay dead-letters purge --older-than 7d --yes
    """
    where = _selection(letter_handler, letter_event, admin.LetterFilter(**filters), everything)
    letters_store = store_or_exit(settings_or_exit(config)).dead_letters
    try:
        letters = ([admin.get_dead_letter(letters_store, letter_handler, letter_event)] if where is None
                   else admin.list_dead_letters(letters_store, where))
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    if not letters:
        return click.echo("no dead letters match")
    if not yes:
        click.confirm(f"Delete {len(letters)} dead letter(s) for good?", abort=True)
    # Exactly the letters counted above, not whatever matches by now.
    click.echo(f"purged {admin.remove_dead_letters(letters_store, letters)} dead letter(s)")
