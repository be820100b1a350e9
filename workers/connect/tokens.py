"""Keeping Instagram Login tokens valid: a long-lived Instagram user token lasts 60 days and is
refreshed (`GET graph.instagram.com/refresh_access_token?grant_type=ig_refresh_token`) when less
than `[meta] token_refresh_before` is left, and once at start while its expiry is unknown.

The refreshed token is kept in the store, sealed, beside the fingerprint of the configured token it
descends from: every process uses it from then on (`AccountState.current_token`), and a restart
does not go back to the file's older token, which may stop working at any time. A new token in the
file starts over. Meta refuses to refresh a token under 24 hours old: that is tried again later, no
failure while the token has time left. A refresh answered "token invalid" (code 190: expired or
revoked) pauses the account as an invalid token does, until a new token is in the file.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import redis

from workers.crypto import Codec
from workers.errors import GraphError, GraphTokenInvalid
from workers.scheduler import backoff
from workers.settings import Account, Settings
from workers.state import Store
from workers.state.accounts import fingerprint

if TYPE_CHECKING:
    from workers.stage import Runtime

log = logging.getLogger(__name__)
REFRESH_PATH = "refresh_access_token"
FIRST_RETRY = 300.0       # seconds after a refused refresh; doubling
LONGEST_RETRY = 6 * 3600.0


def refresh_due(rt: Runtime, *, now: float | None = None) -> int:
    """Refresh every Instagram Login token that is due (one process at a time); how many were."""
    now = time.time() if now is None else now
    refreshed = 0
    for account in rt.settings.accounts:
        if account.instagram_login and is_due(rt, account, now) and \
                rt.store.flags.claim(f"token-refresh:{account.page_id}", ttl=60):
            refreshed += refresh(rt, account, now=now)
    return refreshed


def is_due(rt: Runtime, account: Account, now: float) -> bool:
    """Whether the account's token should be refreshed now."""
    record = _record(rt, account)
    if record.get("next_try") and now < float(record["next_try"]):
        return False
    expires_at = record.get("expires_at")
    return expires_at is None or float(expires_at) - now <= rt.settings.meta.token_refresh_before


def refresh(rt: Runtime, account: Account, *, now: float) -> bool:
    """One refresh; the outcome is kept for every process and for `status`."""
    record = _record(rt, account)
    token = rt.token_for(account)
    try:
        body, _ = rt.graph_for(account).get(REFRESH_PATH, token=token, versioned=False,
                                            params={"grant_type": "ig_refresh_token"})
        fresh, lasts = str(body["access_token"]), float(body["expires_in"])
    except GraphTokenInvalid as exc:  # expired or revoked: only a new login helps
        rt.store.accounts.pause(account.page_id, fingerprint(token), f"code {exc.code}: expired or revoked")
        _refused(rt, account, record, now, f"the token is invalid or expired ({exc.where}): log in again "
                                           f"and put the new token in the file", level=logging.ERROR)
        return False
    except (GraphError, KeyError, TypeError, ValueError) as exc:
        where = exc.where if isinstance(exc, GraphError) else f"unexpected answer ({type(exc).__name__})"
        # Meta refuses a token under 24 hours old: no failure while the token has time left.
        urgent = record.get("expires_at") is not None and \
            float(record["expires_at"]) - now <= rt.settings.meta.token_refresh_before
        level = logging.WARNING if urgent else logging.INFO
        _refused(rt, account, record, now, f"refused: {where}", level=level)
        return False
    rt.store.accounts.keep_token(account.page_id, {
        "token": fresh, "origin": record["origin"], "expires_at": now + lasts, "refreshed_at": now,
        "failures": 0, "error": None, "next_try": None})
    log.info("account=%s token refreshed; it expires %s", account.page_id,
             time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(now + lasts)))
    return True


def _refused(rt: Runtime, account: Account, record: dict, now: float, error: str, *, level: int) -> None:
    """Keep a refused refresh (tried again later, with backoff) for `status` and `check`."""
    failures = int(record.get("failures") or 0) + 1
    wait = backoff(failures, base=FIRST_RETRY, cap=LONGEST_RETRY)
    rt.store.accounts.keep_token(account.page_id, {**record, "failures": failures, "error": error,
                                                   "next_try": now + wait, "tried_at": now})
    log.log(level if failures == 1 else logging.INFO, "account=%s token refresh %s; next try in %.0f min",
            account.page_id, error, wait / 60)


def _record(rt: Runtime, account: Account) -> dict:
    """What is known of the token of the configured one's line; a new token in the file starts over."""
    origin = fingerprint(account.access_token)
    kept = rt.store.accounts.token(account.page_id) or {}
    return kept if kept.get("origin") == origin else {"origin": origin, "expires_at": None}


def known_token(settings: Settings, account: Account) -> str:
    """The account's token for a command (`check`, `subscribe`, the start-up probe): the refreshed
    one if the store answers and holds one, else the file's."""
    if not account.instagram_login:
        return account.access_token
    try:
        return Store(settings.redis_store_url, codec=Codec(settings.encryption_keys)
                     ).accounts.current_token(account)
    except (redis.RedisError, GraphError, OSError):
        return account.access_token
    except Exception as exc:  # a key that does not open it: `check` says so elsewhere
        log.debug("account=%s kept token not read: %s", account.page_id, type(exc).__name__)
        return account.access_token


def token_state(store: Store, account: Account) -> dict | None:
    """For `status`, `check` and /metrics: the token's expiry and its last refresh failure."""
    if not account.instagram_login:
        return None
    kept = store.accounts.token(account.page_id)
    if not kept or kept.get("origin") != fingerprint(account.access_token):
        return {"expires_at": None, "error": None, "next_try": None}
    return {key: kept.get(key) for key in ("expires_at", "refreshed_at", "error", "next_try")}
