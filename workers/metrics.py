"""Prometheus metrics. Dashboards and alerts depend on these names: add, never rename.

With PROMETHEUS_MULTIPROC_DIR set (`run`, `web` and `worker` set it to data_dir/metrics), every
process writes its counts there and `GET /metrics` on the web side adds them up.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DELIVERIES = Counter("inbox_relay_deliveries", "Webhook deliveries answered, by outcome "
                     "(accepted, bad_signature, too_large, bad_request, unavailable)", ["outcome"])
EVENTS = Counter("inbox_relay_events", "Events parsed from deliveries", ["kind", "platform"])
GRAPH_CALLS = Counter("inbox_relay_graph_calls", "Graph API calls, by endpoint and outcome "
                      "(ok, throttled, token_invalid, transient, permanent)", ["endpoint", "outcome"])
HYDRATION = Counter("inbox_relay_hydration", "Messages settled by hydration (complete, unavailable)",
                    ["result"])
HANDLER_DELIVERIES = Counter("inbox_relay_handler_deliveries", "Events handed to handlers, by outcome "
                             "(success, retry, dead_letter)", ["handler", "outcome"])
ACK_SECONDS = Histogram("inbox_relay_ack_seconds", "Time to answer a webhook delivery",
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
HANDLER_PAUSES = Counter("inbox_relay_handler_pauses", "Times a handler's circuit breaker paused it "
                         "(failed attempts in a row)", ["handler"])
EVENT_LOG_ERRORS = Counter("inbox_relay_event_log_errors", "Batches the event log could not write "
                           "(kept for the next try; delivery goes on)")
