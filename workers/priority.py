"""Background work yields the CPU to acknowledgements: lower scheduling priority (nice)."""

from __future__ import annotations

import logging
import os
import threading

from workers import environment

log = logging.getLogger(__name__)
NICE_ENV = environment.NICE


def lower_process_priority_from_env() -> None:
    """Apply the increment NICE_ENV asks for to this process (its children inherit it)."""
    increment = int(os.environ.get(NICE_ENV) or 0)
    if increment <= 0:
        return
    nice = os.nice(increment)
    # Linux's autogroups share the CPU fairly between sessions first, whatever each process's nice:
    # a session of its own (as `run` starts us) must lower its group's weight too.
    try:
        with open("/proc/self/autogroup", "w") as autogroup:
            autogroup.write(str(nice))
    except OSError:
        pass  # no autogroups here: nice alone does it


def lower_thread_priority(increment: int) -> None:
    """Lower the calling thread's priority only (Linux schedules threads one by one); elsewhere,
    or when not permitted, leave it as it is."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except (AttributeError, OSError) as exc:
        log.debug("could not lower this thread's priority: %s", exc)
