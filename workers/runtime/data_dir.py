"""The data directory: private to the user; where the processes share their metrics."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from workers import environment
from workers.settings import Settings

PRIVATE_UMASK = 0o077  # files inbox-relay creates: readable by their owner only


def private_files() -> None:
    """From now on, this process (and what it starts) creates files only its user can read."""
    os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner may enter (made if missing)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


METRICS_ENV = environment.METRICS_DIR
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
