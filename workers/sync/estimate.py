"""`sync --dry-run`: what a sync would read and what it costs, from the conversation counts alone."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from workers.errors import AdminError
from workers.graph_page import Page
from workers.hydration.reader import NEWEST, ConversationReader
from workers.sync.run import ESTIMATE, PLATFORMS
from workers.sync.step import LISTING_LIMIT, OLDER_LIMIT
from workers.times import to_millis

if TYPE_CHECKING:
    from workers.stage import Runtime

COUNT_PAGE = 100  # the cheap listing: ids, times and counts only, 100 conversations a call


def estimate(rt: Runtime, page_id: str, *, platform: str, since: float | None) -> dict:
    """Conversations, messages and the calls a sync would make (the count itself costs a few)."""
    account = rt.settings.account_for(page_id)
    if account is None:
        raise AdminError(f"no [[accounts]] entry for {page_id}")
    reader = ConversationReader.of(rt, account)
    counts: list[int] = []
    scope = [name for name in PLATFORMS[platform] if name in account.platforms]
    for name in scope:
        counts += _message_counts(rt, reader, name, since)
    calls = math.ceil(len(counts) / LISTING_LIMIT) * len(scope)
    calls += sum(math.ceil(max(0, n - NEWEST) / OLDER_LIMIT) for n in counts)
    seconds = calls * (1 / account.calls_per_second + 0.06)
    # Kept for the sync that follows: its progress bar then has a total and an ETA.
    rt.store.sync_jobs.save(account.page_id, ESTIMATE, {"scope": scope, "since": since,
                                                        "conversations": len(counts)})
    return {"conversations": len(counts), "messages": sum(counts), "calls": calls, "seconds": seconds}


def _message_counts(rt: Runtime, reader: ConversationReader, platform: str,
                    since: float | None) -> list[int]:
    counts: list[int] = []
    params: dict = {"platform": platform, "fields": "id,updated_time,message_count", "limit": COUNT_PAGE}
    while True:
        while wait := rt.store.budgets.take_call(reader.account.page_id, reader.account.calls_per_second):
            time.sleep(wait)
        page = reader.get(reader.account.node, params, edge="conversations")
        listed = Page.of(page)
        for node in listed.items:
            updated = to_millis(node.get("updated_time"))
            if since is not None and updated is not None and updated < since * 1000:
                return counts
            counts.append(int(node.get("message_count") or 0))
        if listed.after is None:
            return counts
        params["after"] = listed.after
