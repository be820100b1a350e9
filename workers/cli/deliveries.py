"""`inbox-relay deliveries ...`: list and replay the webhook deliveries a web node recorded."""

from __future__ import annotations

import time
from pathlib import Path

import click

from workers.cli.common import (
    Duration,
    body_option,
    config_option,
    echo_json,
    echo_table,
    json_option,
    settings_or_exit,
    when,
)
from workers.crypto import Codec
from workers.errors import AdminError
from workers.inbox import deliveries as admin
from workers.inbox.database import INBOX_FILE, Inbox
from workers.settings import Settings


@click.group("deliveries", short_help="List or replay the deliveries this web node received.")
def deliveries() -> None:
    """Webhook deliveries recorded in this web node's inbox: list or replay them."""


def _inbox(settings: Settings) -> Inbox:
    path = Path(settings.data_dir) / INBOX_FILE
    if not path.exists():
        raise click.ClickException(f"no inbox at {path}: run this on the machine (and with the "
                                   "data_dir) of the web process that received the deliveries")
    return Inbox(path)


@deliveries.command("list")
@config_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="How many.")
@click.option("--since", type=Duration(), help="Only deliveries received within this long, e.g. 2h.")
@click.option("--failed", is_flag=True,
              help="Only deliveries a worker could not process (bad data or a bug), with the error.")
@json_option
@body_option
def list_deliveries(config, limit, since, failed, as_json, show_body) -> None:
    """List recorded deliveries, newest first (bodies only with --show-body).

    A failed delivery was not retried: after a fix, `deliveries replay ID` sends it again.
    """
    start = time.time() - since if since is not None else None
    settings = settings_or_exit(config)
    infos = admin.list_deliveries(_inbox(settings), Codec(settings.encryption_keys), limit=limit,
                                  since=start, failed=failed, with_body=show_body)
    if as_json:
        return echo_json([_delivery_json(info) for info in infos])
    rows = [[i.id, when(i.received_at), i.size, "yes" if i.published else "no",
             "yes" if i.force else "", i.object or "?", "?" if i.entries is None else i.entries,
             "yes" if i.error else ""] for i in infos]
    echo_table(["ID", "RECEIVED", "BYTES", "PUBLISHED", "FORCED", "OBJECT", "ENTRIES", "FAILED"], rows)
    for info in infos if failed else ():
        click.echo(f"#{info.id} failed {when(info.failed_at)}: {info.error}")
    for info in infos if show_body else ():
        click.echo(f"\n#{info.id}: {(info.body or b'').decode('utf-8', 'replace')}")


def _delivery_json(info: admin.DeliveryInfo) -> dict:
    data = {name: getattr(info, name) for name in ("id", "received_at", "size", "published_at",
                                                    "published", "force", "object", "entries",
                                                    "failed_at", "error", "api_version")}
    if info.body is not None:
        data["body"] = info.body.decode("utf-8", "replace")
    return data


@deliveries.command("replay")
@config_option
@click.argument("delivery_ids", nargs=-1, required=True, type=int)
def replay_deliveries(config, delivery_ids) -> None:
    """Record deliveries again so that they flow through the pipeline once more.

    The copies are forced: every handler gets their events again, even those that already had
    them. A web process using this inbox publishes them to the broker (run this on its machine).
    """
    inbox = _inbox(settings_or_exit(config))
    for delivery_id in delivery_ids:
        try:
            new_id = admin.replay_delivery(inbox, delivery_id)
        except AdminError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"delivery {delivery_id} recorded again as {new_id}")
