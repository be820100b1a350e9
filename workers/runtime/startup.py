"""What `run`, `web` and `worker` check before they serve, each failure one line naming the file.

The inbox must be the one the store remembers (not emptied, not missing rows), and the key must be
the one stored data was sealed with: a key file that vanished is restored, never replaced by a new
key while sealed data exists (a new key opens nothing of it).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from contextlib import closing

import redis

from workers.crypto import TOKEN_PREFIX, Codec, DecryptError, new_key
from workers.errors import ConfigError
from workers.inbox.database import INBOX_FILE, Inbox
from workers.inbox.integrity import check_remembered
from workers.inbox.watch import node_name
from workers.runtime.data_dir import private_dir
from workers.settings import Settings
from workers.state import Store
from workers.state.memory import StoreMemory

log = logging.getLogger(__name__)


def start_checks(settings: Settings, *, serves_inbox: bool, accept_inbox_loss: bool = False) -> list[str]:
    """Raise a RelayError saying what is wrong and what to do; return lines to tell the user."""
    memory = _memory(settings)
    notices = []
    if serves_inbox and memory is not None:
        notices.append(check_remembered(settings.data_dir / INBOX_FILE, memory,
                                        node_name(settings.data_dir), accept_loss=accept_inbox_loss))
    notices.append(prepare_encryption(settings, memory))
    if settings.encryption_keys and memory is not None:
        _mark_sealed(memory)
    check_inbox_opens(settings)
    return [line for line in notices if line]


def _memory(settings: Settings) -> StoreMemory | None:
    """The store's memory, None (with a warning) when the store cannot be read now."""
    memory = Store(settings.redis_store_url).memory
    try:
        memory.sealed()  # a read: it works on a Redis that refuses writes (a full disk) too
    except redis.RedisError as exc:
        log.warning("cannot read the store (%s): start-up does not check that the inbox and the key "
                    "are the ones it remembers", type(exc).__name__)
        return None
    return memory


def _mark_sealed(memory: StoreMemory) -> None:
    try:
        memory.mark_sealed()
    except redis.RedisError as exc:  # refusing writes: the next start marks it
        log.warning("cannot mark the store as holding sealed data (%s)", type(exc).__name__)


def prepare_encryption(settings: Settings, memory: StoreMemory | None) -> str | None:
    """Make the private Redis's key on first start; warn about a shared Redis without keys.

    Returns a line to tell the user, or None. A key is made only for a store that never held
    sealed data and an inbox with no sealed row; otherwise the key file must be restored.
    """
    if settings.encryption_keys or settings.security.plaintext:
        return None
    if not settings.embedded:
        log.warning("a shared Redis without [security] encryption_keys: message text is stored in "
                    "plain text. Make a key with `inbox-relay keygen` and set it on every node, or "
                    "set [security] plaintext = true to say this is intended")
        return None
    _refuse_new_key_over_sealed_data(settings, memory)
    private_dir(settings.data_dir)
    fd = os.open(settings.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(new_key() + "\n")
    return (f"inbox-relay: made an encryption key in {settings.key_file}: what inbox-relay "
            "stores is encrypted with it. Keep a copy; without it, stored data cannot be read.")


def _refuse_new_key_over_sealed_data(settings: Settings, memory: StoreMemory | None) -> None:
    restore = (f"{settings.key_file} is missing, but {{}} holds data encrypted with it: restore the "
               "key file from your copy (a new key would open none of it)")
    if _inbox_holds_sealed_rows(settings):
        raise ConfigError(restore.format(f"the inbox {settings.data_dir / INBOX_FILE}"))
    if memory is None:
        raise ConfigError(f"{settings.key_file} is missing and the private redis cannot be read, so "
                          "whether it holds data encrypted with that key is unknown: start again "
                          "once it answers (see redis.log), or restore the key file")
    if memory.sealed():
        raise ConfigError(restore.format(f"the private redis in {settings.data_dir}"))


def _inbox_holds_sealed_rows(settings: Settings) -> bool:
    path = settings.data_dir / INBOX_FILE
    if not path.exists():
        return False
    with closing(sqlite3.connect(path, timeout=30)) as db:
        try:
            row = db.execute("SELECT 1 FROM deliveries WHERE substr(body, 1, ?) = ? LIMIT 1",
                             (len(TOKEN_PREFIX), TOKEN_PREFIX)).fetchone()
        except sqlite3.OperationalError:  # no table yet: an inbox never used
            return False
    return row is not None


def check_inbox_opens(settings: Settings) -> None:
    """ConfigError if the newest inbox row cannot be decrypted with the configured keys."""
    path = settings.data_dir / INBOX_FILE
    if not path.exists():
        return
    newest = Inbox(path).list(limit=1)
    try:
        for delivery in newest:
            Codec(settings.encryption_keys).open(delivery.body, what=f"inbox delivery {delivery.id}")
    except DecryptError as exc:
        raise ConfigError(f"{exc} ({path}); set the key it was written with") from None
