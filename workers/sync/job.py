"""A sync or sweep in progress: where it stands, checkpointed in the store after every call."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from workers.records import Platform, known_fields

Mode = Literal["sync", "sweep"]


@dataclass
class SyncJob:
    """One account's walk through its conversations, platform by platform.

    `older` holds, per conversation with more than 20 messages, where its older messages go on
    (the API lists them by id and time only).
    """

    page_id: str
    platforms: list[Platform]
    mode: Mode = "sync"
    scope: list[Platform] = field(default_factory=list)  # the platforms asked for (`platforms` shrinks)
    since: float | None = None           # epoch seconds: stop at conversations not updated since
    max_conversations: int | None = None
    cursor: str | None = None            # the conversation listing's `after` cursor
    listing_done: bool = False
    older: list[dict] = field(default_factory=list)  # {"conversation", "customer", "after"}
    conversations: int = 0
    messages: int = 0
    new_messages: int = 0                # not seen before, by webhook or sync
    brought_before: int = 0              # a webhook or sweep brought them first: delivered then only
    # A re-run of a finished sync: only conversations updated since that one started are read.
    updates_since: float | None = None
    expected: int | None = None          # conversations a dry run or the last full sync counted
    calls: int = 0
    started_at: float = 0.0
    finished_at: float | None = None

    @property
    def platform(self) -> Platform | None:
        """The platform being walked, None when every one is done."""
        return self.platforms[0] if self.platforms else None

    @property
    def listing_floor(self) -> float | None:
        """Epoch seconds: the listing stops at the first conversation not updated since."""
        floors = [t for t in (self.since, self.updates_since) if t is not None]
        return max(floors) if floors else None

    @property
    def done(self) -> bool:
        """Whether the job has nothing left to read."""
        return not self.platforms

    def next_platform(self) -> None:
        """The current platform is done: start over on the next one."""
        self.platforms = self.platforms[1:]
        self.cursor, self.listing_done, self.older = None, False, []

    def to_dict(self) -> dict:
        """The JSON-serialisable checkpoint."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SyncJob:
        """Rebuild a checkpoint, ignoring fields this version does not know."""
        return cls(**known_fields(cls, data))
