"""How work moves between tasks, in one place: queues, flags and drain tasks.

- Work waits in **queues** in Redis (sorted sets, `state/queues.py`): one per account for
  hydration (`h|<account>`), one per handler and conversation for delivery (`d|<handler>|<thread>`).
  A task message never carries the work itself, only a queue's name.
- A queue is drained by at most one task at a time: the task holds the queue's **flag** (a key with
  a time to live of one visibility timeout). `schedule` takes the flag and sends the drain task;
  `send` hands a held flag to a new task; `hold` keeps it through a retry's countdown; `finish` gives
  it back and starts another task if items arrived meanwhile.
- A task that queued events may **deliver them itself** for up to 2 s (`delivery/dispatch.py
  deliver_here`), holding the flags it claimed with `claim_many`; what it does not finish goes to
  deliver tasks.
- A task lost with its worker leaves a flag that lapses: `restart_orphans` (the relay every 5 s,
  the workers' sweep every minute) starts a task for each queue with items and no flag.
- Rules for a new stage: queue its work under a queue name of its own (`records.py`), start tasks
  only through this Scheduler, retry with a countdown (never sleep in a task), and keep every
  countdown below the visibility timeout (`hold`), so that no second task starts on the queue.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Collection, Sequence
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

from workers.records import DeliveryQueue, HydrationQueue, Queue, parse_queue
from workers.state.flags import Flags
from workers.state.queues import WorkQueues

QUEUE = "inbox-relay"  # the Celery queue every task travels on
INGEST_TASK = "inbox_relay.ingest"
HYDRATE_TASK = "inbox_relay.hydrate"
DELIVER_TASK = "inbox_relay.deliver"
SWEEP_TASK = "inbox_relay.sweep"
SYNC_TASK = "inbox_relay.sync"
AnyQueue = TypeVar("AnyQueue", bound=Queue)
# The id of the task running in this context: the owner of the flags it claims for itself.
# Outside a task (the `sync` command, say), one id per process.
TASK_ID: ContextVar[str] = ContextVar("task_id", default=f"process-{uuid.uuid4().hex}")
FAILED_QUIET = 3600.0  # a queue whose task failed on a bug is restarted by nothing but new items


def drained_by(handler_names: Collection[str]) -> Callable[[Queue], bool]:
    """Whether a worker with these handlers drains a queue: any hydration queue, and the
    delivery queues of its own handlers (another handler's queue waits for its worker)."""
    return lambda queue: not isinstance(queue, DeliveryQueue) or queue.handler in handler_names


class SendTask(Protocol):
    """Celery's `app.send_task`, as far as the scheduler uses it: by name, keyword arguments."""

    def __call__(self, name: str, *, args: tuple[Any, ...], countdown: float) -> object: ...


class Scheduler:
    """Starts the drain task of a queue unless one holds its flag; tasks name queues as strings."""

    def __init__(self, flags: Flags, queues: WorkQueues, send_task: SendTask, *,
                 visibility_timeout: float, coalesce_seconds: float):
        self.flags, self.queues, self.send_task = flags, queues, send_task
        self.visibility_timeout, self.coalesce_seconds = visibility_timeout, coalesce_seconds

    def schedule(self, queue: Queue, *, countdown: float = 0.0) -> None:
        """Start a drain task for `queue` unless one is already on it."""
        if self.flags.claim(queue.name, ttl=self.visibility_timeout):
            self._start(queue, countdown)

    def claim_many(self, queues: Sequence[AnyQueue]) -> list[AnyQueue]:
        """Take the flags of the queues nobody else drains (one round trip), for the running task
        (see TASK_ID); the caller drains those."""
        taken = self.flags.claim_many([queue.name for queue in queues], ttl=self.visibility_timeout,
                                      owner=TASK_ID.get())
        return [queue for queue, took in zip(queues, taken, strict=True) if took]

    def send(self, queue: Queue, *, countdown: float = 0.0) -> None:
        """Start a drain task for a queue whose flag the caller holds (and hands over)."""
        # Rewritten in any case: a flag still naming the caller's task id would let that task,
        # run again (a retry keeps its id), take it back while the new task drains the queue.
        self.hold(queue, countdown)
        self._start(queue, countdown)

    def _start(self, queue: Queue, countdown: float) -> None:
        """Send the drain task of a queue whose flag is held; give the flag back if that fails."""
        task = HYDRATE_TASK if isinstance(queue, HydrationQueue) else DELIVER_TASK
        try:
            self.send_task(task, args=(queue.name,), countdown=countdown)
        except Exception:
            self.flags.release(queue.name)
            raise

    def restart_orphans(self, wanted: Callable[[Queue], bool] = lambda queue: True) -> int:
        """Start a drain task for each queue that holds items while no task holds its flag; returns
        how many. Its task was lost: its worker was killed, or frozen right after the broker handed
        the task over (outside the unacked set the visibility timeout covers), and its flag expired.
        A queue whose task failed on a bug within FAILED_QUIET is left alone: it must not loop."""
        queues = [queue for queue in map(parse_queue, self.queues.names()) if wanted(queue)]
        quiet = self.flags.held_many([f"failed|{queue.name}" for queue in queues])
        candidates = [queue for queue, failed in zip(queues, quiet, strict=True) if not failed]
        taken = self.flags.claim_many([queue.name for queue in candidates], ttl=self.visibility_timeout,
                                      owner=f"restart-{uuid.uuid4().hex}")
        orphans = [queue for queue, took in zip(candidates, taken, strict=True) if took]
        for queue in orphans:
            self._start(queue, 0.0)
        return len(orphans)

    def failed(self, queue: Queue) -> None:
        """A drain task failed on a bug: give its flag back, and keep restart_orphans off it."""
        self.flags.hold(f"failed|{queue.name}", ttl=FAILED_QUIET)
        self.flags.release(queue.name)

    def hold(self, queue: Queue, countdown: float) -> None:
        """A drain task retries in `countdown` seconds: nobody else starts on its queue meanwhile."""
        self.flags.hold(queue.name, ttl=countdown + self.visibility_timeout)

    def finish(self, queue: Queue) -> None:
        """A drain task is done: give its flag back and start another if items arrived meanwhile."""
        self.flags.release(queue.name)
        if self.queues.length(queue.name):
            hydrating = isinstance(queue, HydrationQueue)
            self.schedule(queue, countdown=self.coalesce_seconds if hydrating else 0.0)


def backoff(attempt: int, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential backoff with jitter (half to all of the doubling step) for retry `attempt` (1-based)."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return random.uniform(ceiling / 2, ceiling)
