"""Running the real `inbox-relay` command line in a subprocess, as a user does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.harness import ROOT

# The developer's own inbox-relay variables would change what the commands read.
USER_VARIABLES = ("INBOX_RELAY_CONFIG", "META_APP_SECRET", "META_VERIFY_TOKEN", "INBOX_RELAY_ENCRYPTION_KEYS")


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """`inbox-relay ARGS` in `cwd`, with none of the user's inbox-relay variables unless in `env`."""
    clean = {k: v for k, v in os.environ.items()
             if k not in USER_VARIABLES and not k.startswith(("META_PAGE_TOKEN_", "META_IG_TOKEN_"))}
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={**clean, "PYTHONPATH": str(ROOT), **(env or {})})
