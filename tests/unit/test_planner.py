"""The hydration planner in-process: which one Graph call it makes, and what that call settles.

The Graph API is the HTTP stand-in (workers/playground/graph_world.py) on 127.0.0.1; the store is a prefixed
namespace of the machine's Redis. No Celery: these are the stage's plain functions.
"""

from __future__ import annotations

import time

import pytest

from tests.harness import present
from workers.graph import GraphClient
from workers.hydration.pending import Pending
from workers.hydration.planner import BEYOND_NEWEST, hydrate_account
from workers.hydration.reader import ConversationReader
from workers.playground.graph_world import GraphWorld
from workers.records import Event
from workers.settings import Account

PAGE, TOKEN = "P1", "token-p1"


@pytest.fixture
def reader(world, store):
    account = Account(page_id=PAGE, access_token=TOKEN, calls_per_second=1000)
    return ConversationReader(account, GraphClient(world.url, "v27.0"), store.budgets)


def message(world: GraphWorld, user: str, mid: str, *, age: float = 60.0) -> Pending:
    """A message from `user` in the stand-in, and the pending event its webhook would give."""
    created = time.time() - age
    world.add_message(PAGE, "messenger", user, mid, text=f"text of {mid}", created=created)
    event = Event(id=f"evt_{mid}", kind="message", platform="messenger", account_id=PAGE,
                  sender_id=user, recipient_id=PAGE, timestamp=int(created * 1000), mid=mid,
                  conversation_id=None, message=None, hydration="pending",
                  raw={"message": {"mid": mid, "text": "webhook text"}})
    return Pending(event)


def paths(world: GraphWorld) -> list[str]:
    return [call["path"] for call in world.calls]


def test_the_token_travels_in_a_header_never_in_the_url(world, reader, store):
    hydrate_account([message(world, "U1", "m_1")], reader, store.accounts)
    assert world.calls and world.calls[0]["page_id"] == PAGE
    assert not [call for call in world.calls if call["token_in_url"]]


def test_several_conversations_are_settled_by_one_listing_call(world, reader, store):
    pending = [message(world, f"U{n}", f"m_{n}_{k}") for n in range(4) for k in range(3)]
    outcome = hydrate_account(pending, reader, store.accounts)
    assert paths(world) == [f"/{PAGE}/conversations"]
    assert sorted(present(e.mid) for e in outcome.settled) == sorted(present(p.event.mid) for p in pending)
    assert all(e.hydration == "complete" and present(e.message)["message"].startswith("text of")
               for e in outcome.settled)
    assert store.accounts.conversation_id(PAGE, "U2") == world.messages["m_2_0"][0].id


def test_first_contact_asks_for_the_users_conversation_and_caches_its_id(world, reader, store):
    first = message(world, "U1", "m_first")
    outcome = hydrate_account([first], reader, store.accounts)
    assert paths(world) == [f"/{PAGE}/conversations"] and world.calls[0]["status"] == 200
    [settled] = outcome.settled
    conversation_id = world.messages["m_first"][0].id
    assert settled.conversation_id == conversation_id
    assert store.accounts.conversation_id(PAGE, "U1") == conversation_id

    second = message(world, "U1", "m_second")
    [settled] = hydrate_account([second], reader, store.accounts).settled
    assert paths(world)[-1] == "/m_second", "a known conversation's single message is read by id"
    assert settled.conversation_id == conversation_id and settled.hydration == "complete"


def test_a_message_beyond_the_20_newest_is_unavailable_with_the_webhook_data(world, reader, store):
    old = message(world, "U1", "m_old", age=600)
    for n in range(25):
        message(world, "U1", f"m_new_{n}", age=500 - n)
    outcome = hydrate_account([old], reader, store.accounts)
    [settled] = outcome.settled
    assert settled.hydration == "unavailable" and settled.hydration_error == BEYOND_NEWEST
    assert present(settled.message)["message"] == "webhook text"
    assert len(world.calls) <= 2, "stops following cursors once the 20 newest are read"


def test_messages_listed_without_details_are_asked_for_by_id(world, reader, store):
    world.nested_details = False
    pending = message(world, "U1", "m_bare")
    outcome = hydrate_account([pending], reader, store.accounts)
    assert outcome.settled == [] and [p.step for p in outcome.redo] == ["by_id"]
    [settled] = hydrate_account(outcome.redo, reader, store.accounts).settled
    assert paths(world)[-1] == "/m_bare" and settled.hydration == "complete"


def test_a_refused_listing_falls_back_to_one_call_per_conversation(world, reader, store):
    world.refuse_listing = True
    pending = [message(world, "U1", "m_a"), message(world, "U2", "m_b")]
    outcome = hydrate_account(pending, reader, store.accounts)
    assert outcome.settled == [] and {p.step for p in outcome.redo} == {"by_thread"}
    # As the queue would: what a call did not settle stays pending, at the step it reached.
    queue = {p.event.id: p for p in outcome.redo}
    settled: list[Event] = []
    while queue and len(world.calls) < 10:
        outcome = hydrate_account(list(queue.values()), reader, store.accounts)
        queue.update((p.event.id, p) for p in outcome.redo)
        for e in outcome.settled:
            queue.pop(e.id)
            settled.append(e)
    assert sorted(present(e.mid) for e in settled) == ["m_a", "m_b"] and not queue
    assert all(e.hydration == "complete" for e in settled)


def test_a_message_the_api_does_not_list_yet_waits_while_fresh(world, reader, store):
    message(world, "U1", "m_listed")
    fresh = Pending(message(world, "U9", "m_unused").event.replace(
        sender_id="U1", mid="m_not_yet", timestamp=int(time.time() * 1000) + 1000))
    outcome = hydrate_account([fresh], reader, store.accounts)
    assert outcome.settled == [] and outcome.waiting == [fresh]


def test_a_webhook_id_is_escaped_in_the_graph_path(world, reader, store):
    store.accounts.remember_conversation(PAGE, "U1", "t_known")
    odd = Pending(message(world, "U1", "m_x").event.replace(mid="../P1/conversations?x=1"))
    [settled] = hydrate_account([odd], reader, store.accounts).settled
    assert paths(world)[-1] == "/..%2FP1%2Fconversations%3Fx%3D1"
    assert settled.hydration == "unavailable"
