"""`inbox-relay send-test-event`: post signed deliveries built as Meta builds them, and optionally
wait until the handler has them."""

from __future__ import annotations

import json
from collections.abc import Callable

import click
import requests

from workers.cli.common import Duration, config_option, settings_or_exit, store_for, when
from workers.connect.arrival import JsonlWatch, jsonl_file, wait_for_records
from workers.connect.samples import (
    KINDS,
    PLATFORMS,
    TEXT,
    build_delivery,
    known_text,
    signed_headers,
    wire_bytes,
)
from workers.connect.tokens import known_token
from workers.ingest.parse import parse_envelope
from workers.playground.seed import LOGIN_TOKEN, TOKEN, ask_for_known_message
from workers.settings import Settings
from workers.urls import shown

PLAYGROUND_TOKENS = (TOKEN, LOGIN_TOKEN)  # the playground's accounts: their messages can be known

DEFAULT_URL = "http://127.0.0.1:8000/webhook"
# Used when no [[accounts]] is configured: inbox-relay delivers such events without hydration.
STAND_IN_IDS = {"messenger": "111899832631525", "instagram": "17841400000000000"}


@click.command("send-test-event")
@config_option
@click.argument("kind", type=click.Choice(KINDS), metavar="KIND")
@click.option("--platform", type=click.Choice(PLATFORMS), default="messenger", show_default=True,
              help="Messenger (entry.id: the page id) or Instagram (the account's instagram_id).")
@click.option("--account", "chosen", metavar="ID",
              help="The account to send as (page id or instagram_id) [default: the first that has the "
                   "platform].")
@click.option("--to", "url", default=DEFAULT_URL, show_default=True, metavar="URL",
              help="The webhook URL (another port if `inbox-relay run --port` says so).")
@click.option("--count", type=click.IntRange(1, 1000), default=1, show_default=True, metavar="N",
              help="How many deliveries to send.")
@click.option("--wait", is_flag=True,
              help="Wait until the events reach the jsonl handler; print their records.")
@click.option("--timeout", type=Duration(), default="60", show_default=True, metavar="SECONDS",
              help="How long --wait waits (90, 2m, ...).")
@click.option("--known/--unknown", default=None,
              help="Text messages the Graph API stand-in knows, so that they arrive hydrated "
                   "[default: --known with the playground's configuration]")
def send_test_event(config: str | None, kind: str, platform: str, chosen: str | None, url: str,
                    count: int, wait: bool, timeout: float, known: bool | None) -> None:
    """Post a test delivery of KIND, signed with the first app secret, to the webhook.

    \b
    KIND: text (with non-ASCII characters), attachment (an image), echo (a reply sent by the
    page), reaction, read, postback, edit (Messenger only), delete (an unsent message), batch
    (one delivery of two entries with several items). entry.id is the page id of the first account
    with Messenger, or with --platform instagram the instagram_id of the first with Instagram (an
    Instagram Login account too); --account chooses another. Each delivery carries Facebook-API-Version: the
    configured [meta] graph_version. Messages, echoes and edits go through hydration: one the
    Graph API does not know arrives with "hydration": "unavailable" after about ten seconds.

    \b
      inbox-relay send-test-event text --wait
    """
    settings = settings_or_exit(config)
    if kind == "edit" and platform == "instagram":
        raise click.UsageError("Meta sends message edits on Messenger only")
    account_id = _entry_id(settings, platform, chosen)
    if known is None:
        account = settings.account_for(account_id)
        known = kind == "text" and account is not None and account.access_token in PLAYGROUND_TOKENS
    if known and kind != "text":
        raise click.UsageError("--known sends text messages only")
    build = _known_builder(settings, account_id) if known else build_delivery
    envelopes = [build(kind, platform, account_id) for _ in range(count)]
    event_ids = [e.id for envelope in envelopes for e in parse_envelope(envelope)]
    watch = _watch(settings, envelopes) if wait else None
    rejected = sum(not _post(settings, url, envelope, kind, n, count) for n, envelope in enumerate(envelopes))
    if rejected:
        raise click.ClickException(f"{rejected} of {count} deliveries were not accepted")
    if watch is not None:
        _wait(watch, event_ids, timeout, why=lambda: _hydration_trouble(settings, account_id))


def _known_builder(settings: Settings, account_id: str) -> Callable[[str, str, str], dict]:
    """Deliveries of messages the Graph stand-in (the playground's) adds first, then serves."""
    account = settings.account_for(account_id)
    if account is None:
        raise click.UsageError("--known needs an [[accounts]] entry (the playground writes one)")

    host = settings.meta.instagram_graph_url if account.instagram_login else settings.meta.graph_url

    def build(kind: str, platform: str, entry_id: str) -> dict:
        try:
            mid, user = ask_for_known_message(host, known_token(settings, account), platform, TEXT)
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"--known: {host} is no playground stand-in "
                                       f"({exc}); start `inbox-relay playground`") from None
        return known_text(platform, entry_id, mid=mid, user=user, text=TEXT)
    return build


def _hydration_trouble(settings: Settings, account_id: str) -> str | None:
    """Why the events may still wait: hydration retrying a failing Graph API (None: not that)."""
    account = settings.account_for(account_id)
    if account is None:
        return None
    try:
        trouble = store_for(settings).accounts.graph_trouble(account.page_id)
    except Exception:  # the store is out of reach: the plain hint has to do
        return None
    if not trouble:
        return None
    return (f"Hydration is retrying: the Graph API answers {trouble['where']}: {trouble['message'][:200]} "
            f"(messages are delivered without details from {when(trouble['gives_up_at'])}).")


def _entry_id(settings: Settings, platform: str, chosen: str | None) -> str:
    """The entry.id to send under: the chosen account's, else the first account's with `platform`."""
    if not settings.accounts:
        click.echo(f"no [[accounts]] configured: sending as test account {STAND_IN_IDS[platform]}, "
                   "whose messages are delivered without hydration", err=True)
        return STAND_IN_IDS[platform]
    account = settings.account_for(chosen) if chosen else next(
        (a for a in settings.accounts if platform in a.platforms), settings.accounts[0])
    if account is None:
        raise click.BadParameter(f"no [[accounts]] entry for {chosen}", param_hint="--account")
    if platform not in account.platforms:
        what = ("is an Instagram Login account: use --platform instagram" if account.instagram_login
                else "has no instagram_id: add the linked Instagram professional account's id")
        raise click.ClickException(f"account {account.page_id} {what}")
    return (account.instagram_id or account.page_id) if platform == "instagram" else account.page_id


def _watch(settings: Settings, envelopes: list[dict]) -> JsonlWatch:
    kinds = {event.kind for envelope in envelopes for event in parse_envelope(envelope)}
    path = jsonl_file(settings, kinds)
    if path is None:
        raise click.ClickException(f"cannot wait: no jsonl handler takes {', '.join(sorted(kinds))} events "
                                   "(leave out --wait and look where your handlers put events)")
    return JsonlWatch(path)


def _post(settings: Settings, url: str, envelope: dict, kind: str, n: int, count: int) -> bool:
    body = wire_bytes(envelope)
    headers = signed_headers(settings.meta.app_secrets[0], body, api_version=settings.meta.graph_version)
    try:
        response = requests.post(url, data=body, headers=headers, timeout=10)
    except requests.RequestException as exc:
        raise click.ClickException(f"cannot reach {shown(url)} ({type(exc).__name__}): is inbox-relay "
                                   "running? Start it with `inbox-relay run`, or pass --to with its "
                                   "webhook URL") from None
    answer = " ".join(response.text.split())[:200]
    items = sum(len(entry["messaging"]) for entry in envelope["entry"])
    click.echo(f"{n + 1}/{count} {kind} ({items} item(s)): {response.status_code} {answer}")
    if response.status_code == 403:
        click.echo("  the webhook refused the signature: is its [meta] app_secrets the same as this "
                   "configuration's?", err=True)
    return response.status_code == 200


def _wait(watch: JsonlWatch, event_ids: list[str], timeout: float, *, why: Callable[[], str | None]) -> None:
    click.echo(f"waiting up to {timeout:.0f}s for {len(event_ids)} event(s) in {watch.path} ...", err=True)
    try:
        records = wait_for_records(watch, event_ids, timeout=timeout)
    except TimeoutError as exc:
        cause = why() or "Is a worker running?"
        raise click.ClickException(f"timed out after {timeout:.0f}s: not in {watch.path} yet: {exc}. "
                                   f"{cause} `inbox-relay status` shows what waits") from None
    for record in records:
        click.echo(json.dumps(record, ensure_ascii=False))

