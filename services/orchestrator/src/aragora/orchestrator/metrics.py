"""Prometheus metrics of the orchestrator (served on ARAGORA_ORCHESTRATOR_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

store_append_seconds = Histogram(
    "aragora_event_store_append_seconds",
    "Time of one event-store append (a decision's events and commands in one transaction)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
)
store_append_failures = Counter(
    "aragora_event_store_append_failures",
    "Event-store appends that failed, by kind (conflict: another writer won the seq)",
    ["kind"],
)
relay_published = Counter(
    "aragora_outbox_relayed", "Events and commands the outbox relay published to NATS"
)
