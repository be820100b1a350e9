"""No open SQLite connection crosses a fork.

SQLite keeps per-process lock bookkeeping for each open file. A child forked while its parent has
the inbox open inherits that bookkeeping, but not the locks themselves: its own connections may
then wait forever for a lock "held" by a transaction that exists only in the parent. gunicorn's
master (which runs the relay) forks web workers whenever one starts or restarts, so every inbox of
a process closes its connection just before a fork and opens a new one when next used.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class ForkAware(Protocol):
    """What an inbox offers: hold off its users and close its connection; let them go on."""

    def suspend_for_fork(self) -> None: ...
    def resume_after_fork(self) -> None: ...


_open: weakref.WeakSet = weakref.WeakSet()
_suspended: list[ForkAware] = []


def watch(inbox: ForkAware) -> None:
    """Close `inbox`'s connection around every fork of this process."""
    _open.add(inbox)


def _before_fork() -> None:
    for inbox in list(_open):
        inbox.suspend_for_fork()
        _suspended.append(inbox)


def _after_fork() -> None:
    while _suspended:
        _suspended.pop().resume_after_fork()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork)
