"""`inbox-relay subscribe`: subscribe the app to a page's webhook fields with the page token."""

from __future__ import annotations

import difflib
import re

import click

from workers.cli.common import config_option, private_redis_for_this_command, settings_or_exit
from workers.connect.checks import (
    NEEDED_FIELDS,
    describe,
    graph_client,
    known_fields,
    needed_fields,
    subscribe,
    subscribed_fields,
)
from workers.connect.tokens import known_token
from workers.errors import GraphError
from workers.settings import Account, Settings

FIELD = re.compile(r"^[a-z_]+$")


def _fields(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None  # the ones inbox-relay needs from this kind of account
    fields = list(dict.fromkeys(f.strip() for f in value.split(",") if f.strip()))
    bad = [f for f in fields if not FIELD.match(f)]
    if not fields or bad:
        raise click.BadParameter(f"expected webhook field names separated by commas, such as "
                                 f"messages,message_reads; got {value!r}")
    return fields


def _known_or_exit(account: Account, fields: list[str]) -> None:
    known, what = known_fields(account), "an Instagram" if account.instagram_login else "a Page"
    unknown = [f for f in fields if f not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(sorted(known))}"
        raise click.BadParameter(f"{unknown[0]!r} is not {what} webhook field{hint}", param_hint="--fields")


@click.command("subscribe")
@config_option
@click.option("--account", "account_id", required=True, metavar="ID",
              help="The page id (or the account's instagram_id) from the configuration.")
@click.option("--fields", callback=_fields, metavar="F1,F2,...",
              help="Webhook fields to subscribe to (default: the ones inbox-relay needs; for a "
                   f"Page: {', '.join(NEEDED_FIELDS)}).")
def subscribe_command(config: str | None, account_id: str, fields: list[str] | None) -> None:
    """Subscribe the app to the page's webhooks (POST /{page-id}/subscribed_apps), with the
    account's page token; then print the fields the page sends now. An Instagram Login account
    subscribes with POST /me/subscribed_apps on graph.instagram.com, with its Instagram user token.

    The token needs pages_manage_metadata. Meta sends a field only if the app subscribes to it in
    the App Dashboard too (Webhooks > Page); Instagram's fields are chosen there alone.
    """
    settings = settings_or_exit(config)
    account = _account(settings, account_id)
    if account.instagram_login:
        private_redis_for_this_command(settings)  # a refreshed token is kept there, not in the file
    fields = list(needed_fields(account)) if fields is None else fields
    _known_or_exit(account, fields)
    graph, token = graph_client(settings, account=account), known_token(settings, account)
    try:
        subscribe(graph, account, fields, token)
        found = subscribed_fields(graph, account, token)
    except GraphError as exc:
        raise click.ClickException(f"account {account.page_id}: "
                                   f"{describe(exc, account, 'cannot subscribe')}") from None
    app, now = found if found else (None, [])
    click.echo(f"account {account.page_id}: app {app!r} is now subscribed to: {', '.join(now) or 'nothing'}")
    missing = [field for field in needed_fields(account) if field not in now]
    if missing:
        click.echo(f"note: inbox-relay also needs {', '.join(missing)}; without them those events "
                   "never arrive", err=True)


def _account(settings: Settings, account_id: str) -> Account:
    account = settings.account_for(account_id)
    if account is None:
        known = ", ".join(a.page_id for a in settings.accounts) or "none"
        raise click.ClickException(f"no [[accounts]] entry with page id {account_id} in "
                                   f"{settings.source} (configured: {known})")
    return account
