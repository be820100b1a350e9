"""The data directory: private to the user; where the processes share their metrics."""

from __future__ import annotations

import os
from pathlib import Path

from workers.runtime.settings import Settings

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


def metrics_dir(settings: Settings) -> Path:
    """The directory the processes of this data_dir share their metrics through."""
    return private_dir(settings.data_dir / "metrics")


def clear_metrics(settings: Settings) -> None:
    """Forget the counts of processes that ran before."""
    for stale in metrics_dir(settings).glob("*.db"):
        stale.unlink(missing_ok=True)
