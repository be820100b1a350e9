"""What hydration knows of each account: conversation ids, paused tokens, paged listings."""

from __future__ import annotations

import hashlib
import time

from workers.settings import Account
from workers.state.base import DAY, Concern, text

CONVERSATION_TTL = 30 * DAY


class AccountState(Concern):
    """The conversation-id cache, token pauses and where a paged listing stopped."""

    def conversation_id(self, account_id: str, customer_id: str) -> str | None:
        """The cached conversation id of an account and a customer."""
        cached = self._redis.get(self._key("conversation", account_id, customer_id))
        return None if cached is None else text(cached)

    def remember_conversation(self, account_id: str, customer_id: str, conversation_id: str) -> None:
        """Cache a conversation id."""
        self._redis.set(self._key("conversation", account_id, customer_id), conversation_id,
                        ex=CONVERSATION_TTL)

    def pause(self, account_id: str, token_fingerprint: str, reason: str) -> None:
        """Record that an account's token is invalid; hydration waits until it changes."""
        self._redis.hset(self._key("paused", account_id),
                         mapping={"token": token_fingerprint, "reason": reason, "since": time.time()})

    def paused(self, account_id: str) -> dict | None:
        """Why and since when an account is paused, or None."""
        return self._redis.hgetall(self._key("paused", account_id)) or None

    def resume(self, account_id: str) -> None:
        """Lift a pause."""
        self._redis.delete(self._key("paused", account_id))

    def note_graph_trouble(self, account_id: str, trouble: dict) -> bool:
        """What the Graph API answered an account's last failed call (`where`, `message`, `at`,
        `next_try`, `gives_up_at`), for `status`; kept a day at most. True when it is the first
        failure since the account's last successful call."""
        earlier = self._redis.set(self._key("graph-trouble", account_id), self._dump(trouble), ex=DAY,
                                  get=True)
        return earlier is None

    def graph_trouble(self, account_id: str) -> dict | None:
        """The account's last Graph failure since its last successful call, or None."""
        data = self._redis.get(self._key("graph-trouble", account_id))
        return self._load(data, what="a Graph failure") if data else None

    def clear_graph_trouble(self, account_id: str) -> None:
        """A call succeeded: the account's Graph trouble is over."""
        self._redis.delete(self._key("graph-trouble", account_id))

    def token(self, account_id: str) -> dict | None:
        """What is known of an Instagram Login account's token: `token` (a refreshed one, if any),
        `origin` (the fingerprint of the configured token it descends from), `expires_at`,
        `next_try`, `failures`, `error`; sealed, like every secret in the store."""
        data = self._redis.get(self._key("token", account_id))
        return self._load(data, what="an account's token") if data else None

    def current_token(self, account: Account) -> str:
        """The token `account`'s calls carry: for Instagram Login, the latest refreshed one (every
        process uses it once one has refreshed it), unless the file holds a newer token."""
        if not account.instagram_login:
            return account.access_token
        kept = self.token(account.page_id)
        if kept and kept.get("token") and kept.get("origin") == fingerprint(account.access_token):
            return str(kept["token"])
        return account.access_token

    def keep_token(self, account_id: str, record: dict) -> None:
        """Keep what is known of the account's token (see `token`), for every process."""
        self._redis.set(self._key("token", account_id), self._dump(record))

    def count_given_up(self, account_id: str, count: int) -> None:
        """Count messages hydration gave up on (delivered without details) after transient errors."""
        self._redis.hincrby(self._key("given-up"), account_id, count)

    def given_up(self, account_id: str) -> int:
        """How many messages of the account hydration gave up on."""
        return int(self._redis.hget(self._key("given-up"), account_id) or 0)

    def save_progress(self, account_id: str, progress: dict, *, ttl: float = 120.0) -> None:
        """Where a paged listing stopped, to go on from there in the next task."""
        self._redis.set(self._key("progress", account_id), self._dump(progress), px=int(ttl * 1000))

    def load_progress(self, account_id: str) -> dict | None:
        """A listing's saved progress, or None."""
        data = self._redis.get(self._key("progress", account_id))
        return self._load(data, what="a listing's progress") if data else None

    def reseal(self) -> int:
        """Seal every saved listing progress and kept token again under the first key; returns how many."""
        count = 0
        for kind in ("progress", "token"):
            for key in self._redis.scan_iter(match=self._key(kind, "*"), count=500):
                stored = self._redis.get(key)
                if stored:
                    self._redis.set(key, self._resealed(stored, what=f"an account's {kind}"), keepttl=True)
                    count += 1
        return count

    def clear_progress(self, account_id: str) -> None:
        """Forget a listing's progress."""
        self._redis.delete(self._key("progress", account_id))


def fingerprint(token: str) -> str:
    """A short hash that tells tokens apart without storing them."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]
