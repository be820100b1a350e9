"""`inbox-relay inbox salvage FILE`: the readable deliveries of a damaged inbox, into a new one."""

from __future__ import annotations

from pathlib import Path

import click

from workers.cli.common import config_option, settings_or_exit
from workers.inbox.database import INBOX_FILE
from workers.inbox.integrity import ACCEPT_FLAG
from workers.inbox.salvage import salvage


@click.group("inbox", short_help="Salvage a damaged inbox.")
def inbox() -> None:
    """This web node's inbox file (data_dir/inbox.sqlite3)."""


@inbox.command("salvage")
@config_option
@click.argument("damaged", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def salvage_command(config, damaged: Path) -> None:
    """Copy the readable deliveries of DAMAGED, an inbox moved aside, into data_dir's inbox.

    Start-up stops on a damaged inbox and says so: move the file aside (with its -wal and -shm
    files), then run this. DAMAGED is only read. Into a new inbox the deliveries keep their ids and
    the inbox its identity; into one that already holds deliveries they are added as new rows.
    Deliveries not yet published are published by the relay once inbox-relay runs again.
    """
    settings = settings_or_exit(config)
    target = settings.data_dir / INBOX_FILE
    if damaged.resolve() == target.resolve():
        raise click.ClickException(f"{damaged} is the inbox itself: move it aside first "
                                   f"(mv {damaged} {damaged}.damaged, and its -wal and -shm files)")
    result = salvage(damaged, target)
    click.echo(f"salvaged {result.read} delivery(ies) from {damaged} into {target}: "
               f"{result.unpublished} not yet published, {result.failed} failed; "
               f"{result.unreadable} id(s) could not be read")
    if result.identity:
        click.echo(f"the new inbox keeps the identity {result.identity} and ids up to "
                   f"#{result.highest}; if start-up says rows were lost, they were unreadable: "
                   f"{ACCEPT_FLAG} goes on without them")
