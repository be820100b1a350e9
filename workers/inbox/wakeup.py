"""Waking a relay that runs in another process (the gunicorn master) through an inherited pipe."""

from __future__ import annotations

import os
import select

from workers import environment

WAKE_FD_ENV = environment.WAKE_FD


class PipeWakeup:
    """A threading.Event look-alike across fork: `set` writes a byte, `wait` selects on the pipe."""

    def __init__(self, read_fd: int | None, write_fd: int):
        self.read_fd, self.write_fd = read_fd, write_fd

    @classmethod
    def create(cls) -> PipeWakeup:
        """A new pipe, non-blocking at both ends."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        return cls(read_fd, write_fd)

    def set(self) -> None:
        """Wake the relay; a full pipe means it will wake anyway."""
        try:
            os.write(self.write_fd, b"\0")
        except BlockingIOError:
            pass

    def wait(self, timeout: float) -> bool:
        """Block until woken or `timeout` passes; True if woken."""
        ready, _, _ = select.select([self._reader()], [], [], timeout)
        return bool(ready)

    def clear(self) -> None:
        """Forget the wake-ups received so far."""
        try:
            while os.read(self._reader(), 4096):
                pass
        except BlockingIOError:
            pass

    def _reader(self) -> int:
        # A web worker's PipeWakeup holds only the inherited write end: it wakes, it never waits.
        if self.read_fd is None:
            raise RuntimeError("this PipeWakeup has no read end; it can only wake")
        return self.read_fd
