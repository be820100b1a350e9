"""The delivery's log line says where each event went: to a handler, to hydration, nowhere and why."""

from __future__ import annotations

from tests.harness import SentTasks, in_process_runtime
from tests.unit.test_routing import UNCONFIGURED, handler, runtime, webhook
from workers.ingest.route import route


def test_route_counts_where_its_events_went(store):
    sent = SentTasks()
    rt = runtime(store, sent, handler("a"), handler("b", kinds=("message",)))
    read, message, elsewhere = webhook(1, "read"), webhook(2), webhook(3, account=UNCONFIGURED)
    assert route(rt, [read, message, elsewhere]) == {"to a": 2, "to b": 1, "to hydration": 1}
    store.progress.mark_done("a", read.id)
    assert route(rt, [read]) == {"already delivered": 1}


def test_an_event_no_handler_takes_is_named_by_its_kind(store):
    rt = in_process_runtime(store, runtime(store, SentTasks()).settings, SentTasks(),
                            handlers={"m": handler("m", kinds=("message",))})
    assert route(rt, [webhook(1, "read")]) == {"no handler takes read": 1}
