"""The data directory and the encryption key: private to the user, made once, checked at start."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from workers.crypto import Codec, DecryptError, new_key
from workers.errors import ConfigError
from workers.inbox.database import INBOX_FILE, Inbox
from workers.runtime.settings import Settings

log = logging.getLogger(__name__)
PRIVATE_UMASK = 0o077  # files inbox-relay creates: readable by their owner only


def private_files() -> None:
    """From now on, this process (and what it starts) creates files only its user can read."""
    os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner may enter (made if missing)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # where each process writes its counts for /metrics
SHARED_MEMORY = Path("/dev/shm")


def metrics_dir(settings: Settings) -> Path:
    """The directory the processes of this data_dir share their metrics through.

    prometheus-client's files are memory-mapped and sparse: on a full disk, a write to a page not
    yet allocated kills the process with SIGBUS. So they live in memory (/dev/shm), one directory
    per user and data_dir, where data_dir's disk filling up cannot reach them; data_dir/metrics
    only where there is no /dev/shm of our own to use.
    """
    data_dir = settings.data_dir.resolve()
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    in_memory = SHARED_MEMORY / f"inbox-relay-{os.getuid()}-{digest}"
    try:
        if in_memory.is_symlink():
            raise PermissionError(str(in_memory))
        path = private_dir(in_memory)
        if path.stat().st_uid != os.getuid():
            raise PermissionError(str(path))
        return path
    except OSError:
        return private_dir(data_dir / "metrics")


def clear_metrics(settings: Settings) -> None:
    """Forget the counts of processes that ran before."""
    for stale in metrics_dir(settings).glob("*.db"):
        stale.unlink(missing_ok=True)


def prepare_encryption(settings: Settings) -> str | None:
    """Make the private Redis's key on first start; warn about a shared Redis without keys.

    Returns a line to tell the user, or None.
    """
    if settings.encryption_keys or settings.security.plaintext:
        return None
    if settings.embedded:
        private_dir(settings.data_dir)
        fd = os.open(settings.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(new_key() + "\n")
        return (f"inbox-relay: made an encryption key in {settings.key_file}: what inbox-relay "
                "stores is encrypted with it. Keep a copy; without it, stored data cannot be read.")
    log.warning("a shared Redis without [security] encryption_keys: message text is stored in plain "
                "text. Make a key with `inbox-relay keygen` and set it on every node, or set "
                "[security] plaintext = true to say this is intended")
    return None


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
