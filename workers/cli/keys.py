"""`inbox-relay keygen` and `inbox-relay rotate-keys`: the keys that encrypt data at rest."""

from __future__ import annotations

import click

from workers.cli.common import config_option, settings_or_exit, store_or_exit
from workers.crypto import Codec, DecryptError, new_key
from workers.inbox.database import INBOX_FILE, Inbox


@click.command("keygen")
def keygen() -> None:
    """Print a new encryption key for [security] encryption_keys (or INBOX_RELAY_ENCRYPTION_KEYS).

    Every node of one deployment needs the same keys. To rotate: put the new key first, keep the
    old one after it, run `inbox-relay rotate-keys` on every web node, then remove the old key.
    """
    click.echo(new_key())


@click.command("rotate-keys")
@config_option
def rotate_keys(config) -> None:
    """Encrypt everything stored again under the first key, so that older keys can be removed.

    Covers this web node's inbox, the shared store (queued events, dead letters, listing
    progress, tokens) and the event log's records; run it on every web node, since each keeps its
    own inbox.
    """
    settings = settings_or_exit(config)
    codec = Codec(settings.encryption_keys)
    if not codec.enabled:
        raise click.ClickException("no encryption key is configured: nothing to rotate to "
                                   "(see `inbox-relay keygen`)")
    try:
        inbox = _reseal_inbox(settings, codec)
        stored = store_or_exit(settings).reseal()
        logged = _reseal_event_log(settings, codec)
    except DecryptError as exc:
        raise click.ClickException(f"{exc}: keep every old key configured until rotation is done") from None
    click.echo(f"re-encrypted {inbox} inbox row(s), {stored} stored value(s) and {logged} event log "
               "record(s) under the first key")


def _reseal_event_log(settings, codec: Codec) -> int:
    from workers.errors import RelayError
    from workers.runtime.context import event_log_for

    if settings.events.log_url == "off":
        return 0
    journal = event_log_for(settings, codec)
    try:
        return journal.reseal()
    except DecryptError:
        raise
    except RelayError as exc:  # a log that cannot be reached: the rest is done; say so
        click.echo(f"event log not re-encrypted ({exc}); run rotate-keys again once it answers", err=True)
        return 0
    finally:
        journal.close()


def _reseal_inbox(settings, codec: Codec) -> int:
    path = settings.data_dir / INBOX_FILE
    return Inbox(path).reseal(codec) if path.exists() else 0
