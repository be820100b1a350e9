"""Spend one Graph call on an account's pending messages: attach details and conversation ids.

The cheapest call that can settle the most messages wins: the account's conversation listing with
nested messages when several conversations wait (one call for up to 25 of them), else one
conversation with its 20 newest messages (all the API will detail), else a message by its id.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from workers.errors import GraphPermanent, GraphRetryable
from workers.hydration.fallback import unavailable
from workers.hydration.pending import Pending
from workers.hydration.reader import MESSAGE_FIELDS, NESTED, ConversationReader, Listing, detailed
from workers.records import Event
from workers.state.accounts import AccountState
from workers.times import to_millis

GRACE_MS = 10_000
BEYOND_NEWEST = "not among the 20 newest messages of its conversation"


@dataclass
class Outcome:
    """What one call settled, what must ask again later, and what changed state for the next call."""

    settled: list[Event] = field(default_factory=list)
    waiting: list[Pending] = field(default_factory=list)  # not listed by the API yet: later
    redo: list[Pending] = field(default_factory=list)     # next call, as soon as there is budget
    more: bool = False                                    # a paged listing stopped for budget


def hydrate_account(pending: list[Pending], reader: ConversationReader,
                    accounts: AccountState) -> Outcome:
    """Choose and make the one call (the caller paid for it) that settles the most of `pending`."""
    page_id = reader.account.page_id
    threads = _by_thread(pending)
    progress = accounts.load_progress(page_id)
    try:
        if progress and progress["thread"] in threads:
            return _hydrate_thread(threads[progress["thread"]], reader, accounts, progress=progress)
        single = next((p for p in pending if p.step == "by_id"), None)
        if single is not None:
            return _hydrate_one(single.event, reader, single.event.conversation_id)
        listable = _listable(threads)
        if len(listable) >= 2:
            return _hydrate_listing(listable, reader, accounts)
        return _hydrate_thread(next(iter(threads.values())), reader, accounts)
    except GraphPermanent as exc:
        accounts.clear_progress(page_id)
        return Outcome(settled=[unavailable(p.event, f"graph: {exc}") for p in pending])


def _by_thread(pending: list[Pending]) -> dict[str, list[Pending]]:
    threads: dict[str, list[Pending]] = {}
    for item in pending:
        threads.setdefault(item.event.thread_key, []).append(item)
    return threads


def _listable(threads: dict[str, list[Pending]]) -> list[list[Pending]]:
    """Conversations not yet tried in a listing, of the platform with the most of them."""
    fresh = [group for group in threads.values() if all(p.step == "new" for p in group)]
    platforms = Counter(group[0].event.platform for group in fresh)
    top = platforms.most_common(1)[0][0] if platforms else None
    return [group for group in fresh if group[0].event.platform == top]


def _hydrate_listing(groups: list[list[Pending]], reader: ConversationReader,
                     accounts: AccountState) -> Outcome:
    try:
        found = reader.recent_messages(groups[0][0].event.platform)
    except (GraphPermanent, GraphRetryable):
        # Too much data for one answer, or a listing the API will not give: ask per conversation.
        found = {}
    outcome = Outcome()
    for item in (p for group in groups for p in group):
        event = item.event
        conversation_id, message = found.get(event.mid or "", (None, None))
        if message is None or conversation_id is None:
            outcome.redo.append(item.at("by_thread"))
            continue
        accounts.remember_conversation(event.account_id or "", event.customer_id or "", conversation_id)
        outcome.settled.append(_complete(event, message, conversation_id))
    return outcome


def _hydrate_thread(group: list[Pending], reader: ConversationReader, accounts: AccountState, *,
                    progress: dict | None = None) -> Outcome:
    first = group[0].event
    account_id, customer = first.account_id or "", first.customer_id or ""
    conversation_id = accounts.conversation_id(account_id, customer)
    wanted = {p.event.mid for p in group if p.event.mid}
    if progress:  # a listing that ran out of budget last time goes on from its cursor
        conversation_id = progress["conversation_id"]
        listing = reader.newest(conversation_id, progress["page"], wanted=wanted,
                                read=progress["messages"], granted=True)
    elif conversation_id and len(group) == 1:
        return _hydrate_one(first, reader, conversation_id)
    else:
        if conversation_id is None:
            conversation_id, node = reader.first_contact(first.platform, customer)
            if conversation_id is None:
                return _no_conversation(group)
            accounts.remember_conversation(account_id, customer, conversation_id)
        else:
            node = reader.get(conversation_id, {"fields": NESTED})
        listing = reader.newest(conversation_id, node.get("messages"), wanted=wanted)
    _keep_progress(accounts, reader.account.page_id, first.thread_key, conversation_id, listing)
    return _match(group, listing, conversation_id)


def _keep_progress(accounts: AccountState, page_id: str, thread: str, conversation_id: str,
                   listing: Listing) -> None:
    if listing.next_page is None:
        accounts.clear_progress(page_id)
        return
    accounts.save_progress(page_id, {"thread": thread, "conversation_id": conversation_id,
                                     "messages": listing.messages,
                                     "page": {"paging": listing.next_page.get("paging")}})


def _no_conversation(group: list[Pending]) -> Outcome:
    # A brand-new conversation may take a moment to be listed: fresh events ask again.
    fresh = [p for p in group if _not_visible_yet(p.event, 0)]
    stale = [unavailable(p.event, "no conversation with this user") for p in group if p not in fresh]
    return Outcome(settled=stale, waiting=fresh)


def _hydrate_one(event: Event, reader: ConversationReader, conversation_id: str | None) -> Outcome:
    try:
        message = reader.get(event.mid or "", {"fields": MESSAGE_FIELDS})
    except GraphPermanent as exc:
        # Meta answers a message past its conversation's 20 newest with code 100 ("does not exist")
        reason = f"{BEYOND_NEWEST} (the API answered {exc.where})" if exc.code == 100 else f"graph: {exc}"
        return Outcome(settled=[unavailable(event, reason, conversation_id)])
    return Outcome(settled=[_complete(event, message, conversation_id)])


def _match(group: list[Pending], listing: Listing, conversation_id: str | None) -> Outcome:
    if listing.messages is None:  # no nested messages at all: fetch each message by its id
        return Outcome(redo=[p.at("by_id", conversation_id=conversation_id) for p in group])
    by_id = {m.get("id"): m for m in listing.messages}
    newest = max((to_millis(m.get("created_time")) or 0 for m in listing.messages), default=0)
    outcome = Outcome(more=listing.next_page is not None)
    for item in group:
        event, message = item.event, by_id.get(item.event.mid)
        if message is not None and detailed(message):
            outcome.settled.append(_complete(event, message, conversation_id))
        elif message is not None:
            outcome.redo.append(item.at("by_id", conversation_id=conversation_id))
        elif outcome.more:
            outcome.redo.append(item)
        elif _not_visible_yet(event, newest):
            outcome.waiting.append(item)
        else:
            outcome.settled.append(unavailable(event, BEYOND_NEWEST, conversation_id))
    return outcome


def _complete(event: Event, message: dict, conversation_id: str | None) -> Event:
    return event.replace(conversation_id=conversation_id, message=message, hydration="complete")


def _not_visible_yet(event: Event, newest_ms: int) -> bool:
    # Newer than anything the API lists and only seconds old: the API may not show it yet.
    if not event.timestamp:
        return False
    now_ms = time.time() * 1000
    return event.timestamp > newest_ms and now_ms - event.timestamp < GRACE_MS
