"""Reading conversations from the Graph API for hydration: lookups, nested messages, cursors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from workers.graph import GraphClient
from workers.graph_page import Page
from workers.settings import Account
from workers.state.budgets import CallBudgets

if TYPE_CHECKING:
    from workers.stage import Runtime

MESSAGE_FIELDS = "id,created_time,from,to,message,attachments,sticker,shares,tags"
NEWEST = 20  # the API details only the 20 newest messages of a conversation
NESTED = f"messages.limit({NEWEST}){{{MESSAGE_FIELDS}}}"
LISTING_LIMIT = 25  # conversations per listing call, most recently updated first


@dataclass(frozen=True)
class Listing:
    """A conversation's newest messages as read so far; `next_page` is set if reading must go on."""

    messages: list[dict] | None  # None: the API left the messages out
    next_page: dict | None = None


class ConversationReader:
    """Graph reads for one account, on its host and with its current token; every call after the
    first asks the shared budget itself. A Page and an Instagram Login account differ only in
    the client (host) and the node of their own edges (`Account.node`)."""

    def __init__(self, account: Account, graph: GraphClient, budgets: CallBudgets, *,
                 token: str | None = None):
        self.account, self.graph, self.budgets = account, graph, budgets
        self.token = account.access_token if token is None else token

    @classmethod
    def of(cls, rt: Runtime, account: Account) -> ConversationReader:
        """The reader of `account` in this process: its host's client, its latest token."""
        return cls(account, rt.graph_for(account), rt.store.budgets, token=rt.token_for(account))

    def get(self, node_id: str, params: dict, *, edge: str = "") -> dict:
        """One call on a node (escaped: ids may come from webhooks); usage headers near a limit
        stop this account's calls for a while."""
        path = quote(node_id, safe="") + (f"/{edge}" if edge else "")
        body, backoff = self.graph.get(path, token=self.token, params=params)
        self.budgets.block_calls(self.account.page_id, backoff)
        return body

    def first_contact(self, platform: str | None, customer: str) -> tuple[str | None, dict]:
        """The conversation with a customer and its nested messages, in one call (None: not found)."""
        params = {"platform": platform, "user_id": customer, "fields": f"id,{NESTED}"}
        body = self.get(self.account.node, params, edge="conversations")
        found = Page.of(body).nodes
        return (found[0]["id"], found[0]) if found else (None, {})

    def recent_messages(self, platform: str | None) -> dict[str, tuple[str, dict]]:
        """The detailed messages of the most recently updated conversations, in one call:
        message id -> (conversation id, message)."""
        params = {"platform": platform, "fields": f"id,{NESTED}", "limit": LISTING_LIMIT}
        body = self.get(self.account.node, params, edge="conversations")
        found: dict[str, tuple[str, dict]] = {}
        for node in Page.of(body).nodes:
            messages = Page.of(node.get("messages")).items
            found.update((m["id"], (node["id"], m)) for m in messages if detailed(m) and m.get("id"))
        return found

    def newest(self, conversation_id: str, page: Any, *, wanted: set[str], read: list[dict] | None = None,
               granted: bool = False) -> Listing:
        """Messages from `page` on, following the cursor while a wanted one is missing among the
        20 newest; stops where the budget runs out. `granted`: the next call is already paid for."""
        if not isinstance(page, dict):
            return Listing(None)
        listed = Page.of(page)
        messages = (read or []) + listed.items
        while listed.after and len(messages) < NEWEST and not wanted <= {m.get("id") for m in messages}:
            if not granted and self.budgets.take_call(self.account.page_id, self.account.calls_per_second):
                return Listing(messages, next_page=page)
            granted = False
            params = {"fields": MESSAGE_FIELDS, "limit": NEWEST - len(messages), "after": listed.after}
            page = self.get(conversation_id, params, edge="messages")
            listed = Page.of(page)
            messages += listed.items
        return Listing(messages)


def detailed(message: dict) -> bool:
    """Whether the API gave a message's details, not just its id."""
    return "from" in message or "message" in message


