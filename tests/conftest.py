"""Fixtures the in-process tests share: a store of their own on the machine's Redis, and the Graph
API stand-in served over HTTP with one account whose budget is not what these tests are about."""

import sys
import uuid
from pathlib import Path

import pytest
import redis

# Tests import workers.playground.graph_world and tests.harness as modules of this package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.harness import REDIS
from workers.playground.graph_server import FakeGraphServer
from workers.playground.graph_world import GraphWorld
from workers.state import Store

PAGE, TOKEN = "P1", "token-p1"


@pytest.fixture
def store(request):
    """A Store under a key prefix of this test's own, deleted afterwards."""
    prefix = f"test-{request.module.__name__.rsplit('.', 1)[-1]}-{uuid.uuid4().hex[:12]}"
    yield Store(REDIS, prefix=prefix)
    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


@pytest.fixture
def world():
    """The Graph stand-in on 127.0.0.1 with account PAGE (TOKEN), 1000 calls a second allowed."""
    world = GraphWorld(calls_per_second=1000)
    world.add_account(PAGE, TOKEN)
    with FakeGraphServer(world) as server:
        world.url = server.url
        yield world
