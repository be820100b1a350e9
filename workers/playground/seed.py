"""What the playground's Graph stand-in knows: one Page with Messenger and Instagram conversations,
and the messages `send-test-event --known` asks it to add, so that their webhooks hydrate."""

from __future__ import annotations

import time
import uuid

from workers.playground.graph_world import GraphWorld

PAGE_ID, INSTAGRAM_ID = "100000000000001", "17841400000000001"
TOKEN = "playground-page-token"  # the stand-in's, worthless anywhere else
# An Instagram account without a Page (Instagram Login), on the second stand-in: graph.instagram.com's
LOGIN_ID, LOGIN_TOKEN = "17841400000000002", "playground-instagram-login-token"
KNOWN_MESSAGES = "/playground/messages"
HISTORY = {  # customer -> the conversation's messages, oldest first (customer's, then the page's)
    ("messenger", "playground-ana"): ["Hi! Are you open on Sunday?", "Yes, from 10 to 16.", "Great, see you"],
    ("messenger", "playground-ben"): ["Can I change my order #1042?", "Sure, what would you like?",
                                      "Two blue ones instead of red", "Done: two blue ones."],
    ("instagram", "playground-chloe"): ["Love the new collection!", "Thank you, Chloe!"],
}


def seeded_world() -> GraphWorld:
    """A stand-in with the playground's Page and the conversations of HISTORY, a few hours old."""
    world = GraphWorld(calls_per_second=2.0)
    world.add_account(PAGE_ID, TOKEN)
    start = time.time() - 3 * 3600
    for n, ((platform, customer), lines) in enumerate(HISTORY.items()):
        for k, text in enumerate(lines):
            world.add_message(PAGE_ID, platform, customer, f"m_playground_{n}_{k}", text=text,
                              from_id=customer if k % 2 == 0 else PAGE_ID, created=start + 600 * n + 60 * k)
    return world


def seeded_instagram_world() -> GraphWorld:
    """The Instagram Login host's stand-in: one account, a conversation, a token two days old."""
    world = GraphWorld(calls_per_second=2.0)
    world.me_only = True
    world.add_account(LOGIN_ID, LOGIN_TOKEN, issued=time.time() - 2 * 86400,
                      expires=time.time() + 58 * 86400)
    start = time.time() - 2 * 3600
    for k, text in enumerate(["Do you ship to Lisbon?", "We do: 3 to 5 days.", "Perfect, thanks!"]):
        world.add_message(LOGIN_ID, "instagram", "playground-dora", f"m_playground_ig_{k}", text=text,
                          from_id="playground-dora" if k % 2 == 0 else LOGIN_ID, created=start + 60 * k)
    return world


def add_known_message(world: GraphWorld, token: str, form: dict) -> tuple[int, dict]:
    """`POST /playground/messages` (platform, user_id, text): a new message from a customer to the
    Page, which the stand-in then serves; answers its mid and sender."""
    page_id = world.tokens.get(token)
    if page_id is None:
        return 400, {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException",
                               "code": 190, "fbtrace_id": "APlayground"}}
    platform = form.get("platform", "messenger")
    customer = form.get("user_id") or f"playground-{uuid.uuid4().hex[:6]}"
    mid = f"m_playground_{uuid.uuid4().hex}"
    world.add_message(page_id, platform, customer, mid, text=form.get("text", "Hello from the playground"))
    return 200, {"mid": mid, "user_id": customer, "page_id": page_id}


def ask_for_known_message(graph_url: str, token: str, platform: str, text: str) -> tuple[str, str]:
    """Ask the stand-in at `graph_url` for a new customer message it will serve: (mid, sender)."""
    import requests

    response = requests.post(f"{graph_url.rstrip('/')}{KNOWN_MESSAGES}", timeout=10,
                             data={"platform": platform, "text": text},
                             headers={"Authorization": f"Bearer {token}"})
    body = response.json()
    if response.status_code != 200:
        raise ValueError(f"the Graph stand-in refused: {body.get('error', {}).get('message', body)}")
    return body["mid"], body["user_id"]
