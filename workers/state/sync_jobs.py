"""Sync checkpoints (sealed like everything else) and when each account was last swept."""

from __future__ import annotations

import time

from workers.state.base import Concern


class SyncJobs(Concern):
    """One checkpoint per account and mode (sync, sweep), and the sweeps' high-water marks."""

    def save(self, page_id: str, mode: str, job: dict) -> None:
        """Keep where a job stands."""
        self._redis.set(self._key("sync", mode, page_id), self._dump(job))

    def load(self, page_id: str, mode: str) -> dict | None:
        """Where a job stood, or None."""
        stored = self._redis.get(self._key("sync", mode, page_id))
        return self._load(stored, what="a sync checkpoint") if stored else None

    def clear(self, page_id: str, mode: str) -> None:
        """Forget a job (it finished, or a new one starts)."""
        self._redis.delete(self._key("sync", mode, page_id))

    def swept_until(self, page_id: str, platform: str) -> float:
        """Up to when a platform of an account was swept; the first call makes it now, so that the
        first sweep starts when inbox-relay first ran for the account."""
        key = self._key("swept", page_id, platform)
        self._redis.set(key, time.time(), nx=True)
        return float(self._redis.get(key) or time.time())

    def mark_swept(self, page_id: str, platform: str, until: float) -> None:
        """A sweep covered the account's platform up to `until`."""
        self._redis.set(self._key("swept", page_id, platform), until)

    def count_found(self, page_id: str, count: int) -> None:
        """Count messages a sweep found that no webhook brought."""
        if count:
            self._redis.hincrby(self._key("sweep-found"), page_id, count)

    def found(self, page_id: str) -> int:
        """How many messages sweeps found that no webhook brought."""
        return int(self._redis.hget(self._key("sweep-found"), page_id) or 0)

    def reseal(self) -> int:
        """Seal every checkpoint again under the first key; returns how many."""
        count = 0
        for key in self._redis.scan_iter(match=self._key("sync", "*"), count=500):
            stored = self._redis.get(key)
            if stored:
                self._redis.set(key, self._resealed(stored, what="a sync checkpoint"))
                count += 1
        return count
