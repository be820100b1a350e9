"""The stand-in's Instagram Login host (graph.instagram.com), as Meta documents it: `/me` for the
token's account (its own node answers `user_id` and `username`, and an app-scoped `id` that
differs from `user_id`), and `GET /refresh_access_token?grant_type=ig_refresh_token`, which
refuses a token under 24 hours old, answers `access_token` and `expires_in` (60 days), and
retires the token it replaced. Every other path is the Graph stand-in's, with `me` put for the
account: one GraphWorld, served on a second port, is the Instagram host.
"""

from __future__ import annotations

import time
from typing import Any

from workers.playground.graph_errors import error

GraphWorld = Any  # a workers.playground.graph_world.GraphWorld (which imports this module)
LIFETIME = 60 * 86400   # seconds a long-lived Instagram user token lasts
REFRESH_AFTER = 86400   # a token is refreshed once it is this old


def resolve_me(world: GraphWorld, path: str, token: str) -> str:
    """`/me/...` as the path of the token's account. On the Instagram host (`me_only`), the
    account's own id is no node: its edges are reached by `me` alone, as Meta documents."""
    parts = path.strip("/").split("/")
    account = world.tokens.get(token)
    if parts[0] == "me" and account is not None:
        return "/".join([account, *parts[1:]])
    if world.me_only and parts[0] == account:
        return "/".join(["not-a-node", *parts[1:]])  # answered 100/33, as for any unknown id
    return path


def own_answer(world: GraphWorld, path: str, query: dict, token: str) -> tuple[int, dict] | None:
    """The answer to `/me` itself or to a refresh; None for every other path."""
    parts = path.strip("/").split("/")
    account = world.tokens.get(token)
    if parts not in (["me"], ["refresh_access_token"]) or account is None:
        return None
    if parts == ["me"]:
        found = {"id": f"{account}0042", "user_id": account, "username": f"shop_{account[-4:]}"}
        wanted = query.get("fields", "id").split(",")
        return 200, {key: value for key, value in found.items() if key in wanted}
    return _refresh(world, query, token, account)


def _refresh(world: GraphWorld, query: dict, token: str, account: str) -> tuple[int, dict]:
    if query.get("grant_type") != "ig_refresh_token":
        return 400, error(100, "Invalid grant_type", "OAuthException")
    now = world.clock()
    if now - world.issued.get(token, now) < REFRESH_AFTER:
        return 400, error(100, "The access token is too new to be refreshed: refresh it once it is "
                               "at least 24 hours old", "OAuthException")
    world.refreshes += 1
    fresh = f"{token.split('~', 1)[0]}~{world.refreshes}"
    world.tokens[fresh] = account
    world.issued[fresh], world.expires[fresh] = now, now + LIFETIME
    world.revoked.add(token)  # the old token may stop working at any time: here, at once
    return 200, {"access_token": fresh, "token_type": "bearer", "expires_in": LIFETIME}


def expired(world: GraphWorld, token: str) -> bool:
    """Whether the token is past its expiry (in the world's clock)."""
    return token in world.expires and world.clock() >= world.expires[token]


def wall_clock() -> float:
    """The world's default clock; tests move a world's clock to age its tokens."""
    return time.time()
