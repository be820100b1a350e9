"""`inbox-relay init`: write a commented configuration to start from, readable by its owner only."""

from __future__ import annotations

import re
from pathlib import Path

import click

from workers import environment
from workers.cli.common import DEFAULT_CONFIG
from workers.connect.template import render_config, write_private

PAGE_ID = re.compile(r"^[0-9]{1,32}$")


def _page_ids(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    bad = [value for value in values if not PAGE_ID.match(value)]
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is no page id: a Facebook Page id is a number "
                                 "(Page > About > Page transparency, or the Page's settings)")
    return list(dict.fromkeys(values))


@click.command("init")
@click.option("--path", "path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_CONFIG,
              show_default=True, help="Where to write the configuration.")
@click.option("--page-id", "page_ids", multiple=True, callback=_page_ids, metavar="ID",
              help="A Facebook Page to connect; repeat for several.")
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
def init(path: Path, page_ids: list[str], force: bool) -> None:
    """Write a configuration ready to edit: a new random verify token and encryption key, one
    [[accounts]] table per --page-id, and a jsonl handler (./var/events.jsonl).

    The file is created readable by you only (mode 0600); an existing file is left alone unless
    --force. Then put your app secret in it (or set META_APP_SECRET), set each page's token as
    META_PAGE_TOKEN_<page id>, and run `inbox-relay check`.

    \b
      inbox-relay init --page-id 1234567890
    """
    try:
        write_private(path, render_config(page_ids), force=force)
    except FileExistsError:
        raise click.ClickException(f"{path} exists; pass --force to replace it "
                                   "(its verify token and encryption key would change)") from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None
    _next_steps(path, page_ids)


def _next_steps(path: Path, page_ids: list[str]) -> None:
    config = "" if str(path) == DEFAULT_CONFIG else f" --config {path}"
    click.echo(f"wrote {path} (readable by you only), with a new verify token and encryption key")
    click.echo("next:")
    click.echo("  1. put your app secret in [meta] app_secrets, or set META_APP_SECRET")
    prefix = environment.PAGE_TOKEN_PREFIX
    variables = ", ".join(f"{prefix}{page_id}" for page_id in page_ids or ["<page id>"])
    click.echo(f"  2. set {variables} to each page's access token")
    click.echo("  3. type [meta] verify_token as the Verify token in the App Dashboard (Webhooks)")
    account = page_ids[0] if len(page_ids) == 1 else "<page id>"
    click.echo(f"  4. inbox-relay subscribe --account {account}{config} (for each page), "
               f"then inbox-relay check{config}")
    click.echo("  keep a copy of [security] encryption_keys: without it stored data cannot be read")
