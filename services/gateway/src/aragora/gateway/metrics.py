"""Prometheus metrics of the gateway (names as the runbook reads them)."""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client import REGISTRY as _DEFAULT

REGISTRY: CollectorRegistry = _DEFAULT
__all__ = ["CONTENT_TYPE_LATEST", "REGISTRY", "record_outcome", "render"]

debates_total = Counter(
    "aragora_debates", "Debates that reached a terminal status, by status", ["status"]
)
consensus_reached = Counter("aragora_consensus_reached", "Debates that ended in consensus")
debates_started = Counter("aragora_debates_started", "Debates accepted by the API")
websocket_connections = Gauge("aragora_websocket_connections", "Open WebSocket connections")
ws_connection_errors = Counter(
    "ws_connection_errors", "WebSocket connections that ended with an error"
)


def record_outcome(view: dict[str, Any]) -> None:
    debates_total.labels(status=view["status"]).inc()
    if view["status"] == "consensus":
        consensus_reached.inc()


def render() -> bytes:
    return generate_latest(REGISTRY)
