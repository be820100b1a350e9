"""`inbox-relay check`: is the configuration valid, does each page token work, is each page
subscribed to the webhook fields inbox-relay needs, is a shared Redis encrypted."""

from __future__ import annotations

import sys
import time

import click

from workers.cli.common import config_option, private_redis_for_this_command, settings_or_exit, when
from workers.connect.checks import Finding, check_account, check_settings, graph_client, redact
from workers.connect.tokens import known_token, token_state
from workers.errors import RelayError
from workers.settings import Account, Settings


@click.command("check")
@config_option
def check(config: str | None) -> None:
    """Check the set-up against Meta; exit 1, naming what is wrong, if anything is.

    \b
    - the configuration is valid and its handlers load;
    - each account's token reads its page (GET /{page-id}?fields=id,name);
    - each page's app subscription (GET /{page-id}/subscribed_apps) has every webhook field
      inbox-relay needs (fix: `inbox-relay subscribe --account ID`);
    - a shared Redis has [security] encryption_keys, or plaintext = true;
    - data_dir is writable, and the keys open the inbox and the store (dead letters, queues);
    - an Instagram Login account's token: its expiry, and a refresh that failed.

    Tokens and secrets are never printed.
    """
    settings = settings_or_exit(config)
    if any(account.instagram_login for account in settings.accounts):
        private_redis_for_this_command(settings)  # a refreshed token is kept there, not in the file
    findings = [Finding("configuration", True, f"{settings.source} is valid"), _data_dir_finding(settings),
                _keys_finding(settings), _store_keys_finding(settings), _handlers_finding(settings),
                *check_settings(settings)]
    tokens = [known_token(settings, account) for account in settings.accounts]  # the store, once each
    for account, token in zip(settings.accounts, tokens, strict=True):
        findings += check_account(graph_client(settings, account=account), account, token)
        findings += _token_finding(settings, account)
    for finding in findings:
        click.echo(f"{'ok  ' if finding.ok else 'FAIL'}  {finding.subject}: "
                   f"{_clean(finding.text, settings, tokens)}")
    failed = list(dict.fromkeys(f.subject for f in findings if not f.ok))
    if failed:
        click.echo(f"{len(failed)} to fix: {', '.join(failed)}", err=True)
        sys.exit(1)
    click.echo(f"all good: {len(settings.accounts)} account(s) ready for Meta's webhooks")


def _data_dir_finding(settings: Settings) -> Finding:
    """data_dir holds the inbox (and the private Redis): it must be a directory this user writes."""
    import tempfile

    data_dir = settings.data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as exc:
        return Finding("data_dir", False, f"{data_dir} is not writable ({exc.strerror}): make it a "
                                          "directory this user can write, or set [queue] data_dir")
    return Finding("data_dir", True, f"{data_dir} is writable")


def _keys_finding(settings: Settings) -> Finding:
    """The configured keys open what this node's inbox holds (its newest rows)."""
    from workers.crypto import Codec, DecryptError
    from workers.inbox.database import INBOX_FILE, Inbox

    path = settings.data_dir / INBOX_FILE
    if not path.exists():
        return Finding("keys", True, "no inbox yet: nothing sealed to open")
    codec = Codec(settings.encryption_keys)
    try:
        for delivery in Inbox(path).list(limit=20):
            codec.open(delivery.body, what=f"inbox delivery {delivery.id}")
    except DecryptError as exc:
        return Finding("keys", False, f"{exc}: configure the key it was sealed with (keep old keys "
                                      "after the new one until `inbox-relay rotate-keys` has run)")
    except RelayError as exc:  # a damaged inbox: its own words say what to do
        return Finding("keys", False, str(exc))
    except OSError as exc:
        return Finding("keys", False, f"{path} cannot be read ({exc.strerror})")
    return Finding("keys", True, "the configured keys open the inbox's newest deliveries")


def _store_keys_finding(settings: Settings) -> Finding:
    """The configured keys open what the store holds (dead letters, queued events), if it answers.
    A stopped private Redis is started for `check` only when an Instagram Login account's token is
    needed from it; else the finding says it was not opened."""
    import redis

    from workers.cli.common import store_for
    from workers.crypto import DecryptError

    try:
        opened = store_for(settings).open_some()
    except DecryptError as exc:
        return Finding("store keys", False, f"{exc}: configure the key it was sealed with (keep old "
                                            "keys after the new one until `inbox-relay rotate-keys` has run)")
    except redis.RedisError as exc:
        if settings.embedded:
            return Finding("store keys", True, "the private Redis is not running: nothing to open")
        return Finding("store keys", False, "cannot reach the store (queue.store_url or "
                                            f"queue.broker_url): {type(exc).__name__}")
    return Finding("store keys", True, f"the configured keys open the store ({opened} sealed value(s) tried)")


def _token_finding(settings: Settings, account: Account) -> list[Finding]:
    """An Instagram Login token's expiry, and a refresh that failed (the workers refresh it)."""
    import redis

    from workers.cli.common import store_for

    if not account.instagram_login:
        return []
    subject = f"account {account.page_id}"
    try:
        state = token_state(store_for(settings), account) or {}
    except (redis.RedisError, RelayError):
        return [Finding(subject, True, "token expiry not known here (the store does not answer): "
                                       "the workers refresh the token once they run")]
    expires_at = state.get("expires_at")
    expires = when(expires_at) if expires_at else None
    if state.get("error") and state.get("next_try"):
        # Refused while plenty is left (a token under 24 hours old, say) is no failure yet.
        urgent = expires_at is not None and expires_at - time.time() <= settings.meta.token_refresh_before
        return [Finding(subject, not urgent, f"the last token refresh: {state['error']}; next try "
                                             f"{when(state['next_try'])}; the token expires "
                                             f"{expires or '(not known)'}")]
    if expires:
        return [Finding(subject, True, f"the token expires {expires}; the workers refresh it before")]
    return [Finding(subject, True, "token expiry not known yet: the workers refresh it once they run")]


def _handlers_finding(settings: Settings) -> Finding:
    from workers.delivery.plugins import load_handlers

    try:
        names = list(load_handlers(settings))
    except RelayError as exc:
        return Finding("handlers", False, str(exc))
    if not names:
        return Finding("handlers", False, "no [[handlers]]: events would reach nobody "
                                          "(add one, e.g. type = \"jsonl\")")
    return Finding("handlers", True, f"loaded: {', '.join(names)}")


def _clean(text: str, settings: Settings, tokens: list[str]) -> str:
    """The text without any configured secret or token in use, whatever it quotes."""
    for account, token in zip(settings.accounts, tokens, strict=True):
        text = redact(text, account).replace(token or "\0", "<token>")
    for secret in (*settings.meta.app_secrets, settings.meta.verify_token):
        if len(secret) >= 6:  # a shorter one would be found in ordinary words
            text = text.replace(secret, "<secret>")
    return text
