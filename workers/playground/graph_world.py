"""A Graph API stand-in served over real HTTP on 127.0.0.1, with the behaviours Meta documents.

Conversations API reads (`/{page}/conversations`, `/{conversation}`, `/{message}`), nested
`messages.limit(N){...}` fields, cursor paging, details for the 20 newest messages only, a per-account
rate limit (code 613), injected transient 500s (code 2), invalid tokens (code 190),
`appsecret_proof` checks and usage headers. It counts every call so tests and benchmarks can.
The Page node and its `subscribed_apps` edge (GET and POST) are in `graph_pages.py`, the HTTP
server in `graph_server.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from workers.playground import graph_instagram
from workers.playground.graph_errors import error, no_object, token_refusal
from workers.playground.graph_pages import answer_setup, is_setup_path

NEWEST_WITH_DETAILS = 20
DEFAULT_PAGE = 25
ARRIVAL_JITTER = 0.15  # seconds: the spacing a sender kept may shrink by this much on the way


@dataclass
class Conversation:
    id: str
    page_id: str
    platform: str
    user_id: str
    messages: list[dict] = field(default_factory=list)  # newest first

    def updated_time(self) -> str:
        return self.messages[0]["created_time"] if self.messages else _iso(time.time())


class GraphWorld:
    """The accounts, conversations and messages the stand-in serves, and its call log."""

    url: str  # where a FakeGraphServer serves it, set by the fixture that starts one

    def __init__(self, *, calls_per_second: float = 2.0, transient_rate: float = 0.0,
                 app_secret: str | None = None, seed: int = 7):
        self.calls_per_second = calls_per_second
        self.transient_rate = transient_rate
        self.app_secret = app_secret          # when set, every call must carry appsecret_proof
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.tokens: dict[str, str] = {}      # token -> page id
        self.revoked: set[str] = set()
        self.conversations: dict[str, Conversation] = {}
        self.messages: dict[str, tuple[Conversation, dict]] = {}
        self.calls: list[dict] = []
        self.windows: dict[str, deque] = defaultdict(deque)
        self.usage_header: str | None = None
        self.nested_details = True            # False: nested messages come as ids only
        self.max_page = 100                   # the most items one page holds, whatever the limit
        self.refuse_listing = False           # True: a listing without user_id asks for less data
        self.app_name, self.app_id = "inbox-relay test app", "1234567890123456"
        self.page_names: dict[str, str] = {}
        self.subscriptions: dict[str, list[str]] = {}  # page id -> the app's subscribed webhook fields
        self.setup_calls: list[dict] = []     # page reads and subscriptions: not Conversations API calls
        self.latency = 0.0                    # seconds each answer takes (benchmarks: Meta's ~50 ms)
        # Instagram Login tokens (graph_instagram.py): when each was issued and expires, refreshes
        self.issued: dict[str, float] = {}
        self.expires: dict[str, float] = {}
        self.refreshes, self.me_only = 0, False  # me_only: the Instagram host, where ids are no node
        self.clock = graph_instagram.wall_clock

    # -- building the world ---------------------------------------------------------------
    def add_account(self, page_id: str, token: str, *, issued: float | None = None,
                    expires: float | None = None) -> None:
        self.tokens[token] = page_id
        if issued is not None:
            self.issued[token] = issued
        if expires is not None:
            self.expires[token] = expires

    def add_message(self, page_id: str, platform: str, user_id: str, mid: str, *, text: str,
                    from_id: str | None = None, created: float | None = None) -> dict:
        """Add a message (newest first) to the conversation of page and user, creating it."""
        with self.lock:
            conversation = self._conversation(page_id, platform, user_id)
            sender = from_id or user_id
            recipient = page_id if sender == user_id else user_id
            message = {"id": mid, "created_time": _iso(created or time.time()),
                       "from": {"id": sender, "name": f"name-{sender}"},
                       "to": {"data": [{"id": recipient, "name": f"name-{recipient}"}]},
                       "message": text}
            conversation.messages.insert(0, message)
            self.messages[mid] = (conversation, message)
            return message

    def _conversation(self, page_id: str, platform: str, user_id: str) -> Conversation:
        wanted = (page_id, platform, user_id)
        for conversation in self.conversations.values():
            if (conversation.page_id, conversation.platform, conversation.user_id) == wanted:
                return conversation
        conversation_id = f"t_{len(self.conversations) + 1:06d}{page_id[-4:]}"
        conversation = Conversation(conversation_id, page_id, platform, user_id)
        self.conversations[conversation.id] = conversation
        return conversation

    # -- reading the call log -------------------------------------------------------------
    def count(self, *, status: int | None = None, code: int | None = None,
              page_id: str | None = None) -> int:
        with self.lock:
            return sum(1 for c in self.calls if (status is None or c["status"] == status)
                       and (code is None or c["code"] == code)
                       and (page_id is None or c["page_id"] == page_id))

    def throttled(self) -> int:
        return self.count(code=613)

    # -- answering ------------------------------------------------------------------------
    def answer(self, path: str, query: dict[str, str], token: str,
               method: str = "GET") -> tuple[int, dict, dict]:
        """Answer one call; `token` comes from the Authorization header (or the query string)."""
        with self.lock:
            own = None if self._token_error(token) else graph_instagram.own_answer(self, path, query, token)
            resolved = graph_instagram.resolve_me(self, path, token)  # the log keeps the path asked
            setup = own is not None or is_setup_path(self, resolved.strip("/").split("/"))
            status, body = own or self._answer(resolved, query, token, method)
            page_id = self.tokens.get(token)
            log = self.setup_calls if setup else self.calls
            log.append({"path": path, "method": method, "status": status, "page_id": page_id,
                        "token_in_url": "access_token" in query,
                        "code": body.get("error", {}).get("code") if isinstance(body, dict) else None,
                        "at": time.monotonic()})
            headers = {"X-Business-Use-Case-Usage": self.usage_header} if self.usage_header else {}
            return status, body, headers

    def _token_error(self, token: str) -> tuple[int, dict] | None:
        invalid = self.tokens.get(token) is None or token in self.revoked
        return token_refusal(invalid=invalid, expired=graph_instagram.expired(self, token))

    def _answer(self, path: str, query: dict, token: str, method: str) -> tuple[int, dict]:
        page_id = self.tokens.get(token)
        refused = self._token_error(token)
        if refused or page_id is None:
            return refused or (400, {})
        if self.app_secret and query.get("appsecret_proof") != _proof(self.app_secret, token):
            return 400, error(100, "API calls from the server require an appsecret_proof argument",
                               "GraphMethodException")
        parts = path.strip("/").split("/")
        if is_setup_path(self, parts):
            return answer_setup(self, method, parts, query, page_id)
        if method != "GET":
            return 400, error(100, "Unsupported post request.", "GraphMethodException", 33)
        if self._over_limit(page_id):
            return 400, error(613, "Calls to this API have exceeded the rate limit",
                               "FacebookApiException")
        if self.transient_rate and self.random.random() < self.transient_rate:
            message = "An unexpected error has occurred. Please retry your request later."
            return 500, {"error": {"message": message, "type": "OAuthException", "is_transient": True,
                                   "code": 2, "fbtrace_id": "Fake"}}
        return self._read(path.strip("/").split("/"), query, page_id)

    def _over_limit(self, page_id: str) -> bool:
        # At most `calls_per_second` calls in any sliding window (of 1 s, or 1/rate s below 1 call/s),
        # less ARRIVAL_JITTER: a loaded machine delays one request's arrival behind the next one's.
        span = max(1.0, 1.0 / self.calls_per_second)
        window, now = self.windows[page_id], time.monotonic()
        while window and now - window[0] >= span - ARRIVAL_JITTER:
            window.popleft()
        window.append(now)  # throttled attempts count too, as Meta's do
        return len(window) > self.calls_per_second * span

    def _read(self, parts: list[str], query: dict, page_id: str) -> tuple[int, dict]:
        if len(parts) == 2 and parts[1] == "conversations" and parts[0] == page_id:
            body = self._conversations(page_id, query)
            return (500 if "error" in body else 200), body
        if len(parts) == 2 and parts[1] == "messages" and parts[0] in self.conversations:
            conversation = self.conversations[parts[0]]
            if conversation.page_id == page_id:
                detailed = "fields" in query
                items = [self._message_item(conversation, m, detailed) for m in conversation.messages]
                limit = min(int(query.get("limit", DEFAULT_PAGE)), self.max_page)
                return 200, _page(items, query, limit=limit)
        if len(parts) == 1 and parts[0] in self.conversations:
            conversation = self.conversations[parts[0]]
            if conversation.page_id == page_id:
                return 200, self._conversation_node(conversation, query.get("fields", ""))
        if len(parts) == 1 and parts[0] in self.messages:
            return self._message(parts[0], page_id)
        return no_object(parts[-1])

    def _conversations(self, page_id: str, query: dict) -> dict:
        if self.refuse_listing and not query.get("user_id"):
            return error(1, "Please reduce the amount of data you're asking for, then retry your request",
                          "OAuthException")
        platform = query.get("platform", "messenger")
        found = [c for c in self.conversations.values() if c.page_id == page_id and c.platform == platform
                 and (not query.get("user_id") or c.user_id == query["user_id"])]
        found.sort(key=lambda c: c.updated_time(), reverse=True)
        nodes = [self._conversation_node(c, query.get("fields", "")) for c in found]
        return _page(nodes, query, limit=int(query.get("limit", DEFAULT_PAGE)))

    def _conversation_node(self, conversation: Conversation, fields: str) -> dict:
        node: dict = {"id": conversation.id, "updated_time": conversation.updated_time()}
        if "message_count" in fields:
            node["message_count"] = len(conversation.messages)
        nested = re.search(r"messages(?:\.limit\((\d+)\))?(\{[^}]*\})?", fields)
        if nested:
            limit = min(int(nested.group(1) or DEFAULT_PAGE), self.max_page)
            detailed = bool(nested.group(2)) and self.nested_details
            items = [self._message_item(conversation, m, detailed) for m in conversation.messages]
            node["messages"] = _page(items, {}, limit=limit)
        return node

    def _message_item(self, conversation: Conversation, message: dict, detailed: bool) -> dict:
        position = conversation.messages.index(message)
        if detailed and position < NEWEST_WITH_DETAILS:
            return dict(message)
        return {"id": message["id"], "created_time": message["created_time"]}

    def _message(self, mid: str, page_id: str) -> tuple[int, dict]:
        conversation, message = self.messages[mid]
        if conversation.page_id != page_id or conversation.messages.index(message) >= NEWEST_WITH_DETAILS:
            return no_object(mid)
        return 200, dict(message)

    def edit_message(self, mid: str, text: str) -> None:
        """Change a message's text, as its sender's edit does (Meta then sends `message_edit`)."""
        with self.lock:
            self.messages[mid][1]["message"] = text


def _page(items: list[dict], query: dict, *, limit: int) -> dict:
    start = int(query.get("after", "0") or 0)
    chunk = items[start:start + limit]
    paging: dict[str, object] = {"cursors": {"before": str(start), "after": str(start + len(chunk))}}
    if start + limit < len(items):
        paging["next"] = f"?after={start + len(chunk)}&limit={limit}"
    return {"data": chunk, "paging": paging}


def _proof(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
