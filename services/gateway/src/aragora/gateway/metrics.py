"""Prometheus metrics of the gateway (names as the runbook reads them).

The per-agent ones are derived from the debate events the live projector applies (never
from a ``projections rebuild``, so a rebuild counts nothing twice); the circuit-breaker
gauge is read from the breakers KV on each scrape.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import REGISTRY as _DEFAULT

from aragora.contracts.messages import DebateEvent, TurnCompleted, TurnFailed

REGISTRY: CollectorRegistry = _DEFAULT
__all__ = [
    "CONTENT_TYPE_LATEST",
    "REGISTRY",
    "record_breakers",
    "record_outcome",
    "record_turn",
    "render",
]

debates_total = Counter(
    "aragora_debates", "Debates that reached a terminal status, by status", ["status"]
)
consensus_reached = Counter("aragora_consensus_reached", "Debates that ended in consensus")
debates_started = Counter("aragora_debates_started", "Debates accepted by the API")
websocket_connections = Gauge("aragora_websocket_connections", "Open WebSocket connections")
websocket_max_connections = Gauge(
    "aragora_websocket_max_connections",
    "WebSocket connections this gateway accepts (ARAGORA_WS_MAX_CONNECTIONS), for alerts",
)
ws_connection_errors = Counter(
    "ws_connection_errors", "WebSocket connections that ended with an error"
)

# LLM calls take from a fraction of a second to minutes.
RESPONSE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
agent_response_seconds = Histogram(
    "aragora_agent_response_seconds",
    "Time an agent took to answer a turn (completed turns), seconds",
    ["agent", "provider", "model"],
    buckets=RESPONSE_BUCKETS,
)
agent_failures = Counter(
    "aragora_agent_failures", "Turns an agent failed, by failure reason", ["agent", "reason"]
)
agent_tokens = Counter(
    "aragora_agent_tokens",
    "Tokens used by completed turns (kind: prompt or completion)",
    ["agent", "provider", "model", "kind"],
)
agent_cost = Counter(
    "aragora_agent_cost_usd", "USD cost of completed turns", ["agent", "provider", "model"]
)
agent_fallbacks = Counter(
    "aragora_agent_fallbacks",
    "Turns of an agent answered by a fallback agent, by the fallback's reason",
    ["agent", "served_by", "reason"],
)
BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}
agent_circuit_breaker_state = Gauge(
    "aragora_agent_circuit_breaker_state",
    "Circuit breaker of an agent: 0 closed, 1 half-open, 2 open (read on scrape)",
    ["agent"],
)


def record_turn(event: DebateEvent) -> None:
    """Count a turn's outcome (live projection only)."""
    if isinstance(event, TurnCompleted):
        labels = {"agent": event.agent, "provider": event.provider, "model": event.model}
        agent_response_seconds.labels(**labels).observe(event.latency_ms / 1000)
        agent_tokens.labels(**labels, kind="prompt").inc(max(event.prompt_tokens, 0))
        agent_tokens.labels(**labels, kind="completion").inc(max(event.completion_tokens, 0))
        agent_cost.labels(**labels).inc(max(event.cost_usd, 0.0))
        if event.served_by:
            agent_fallbacks.labels(
                agent=event.agent, served_by=event.served_by, reason=event.fallback_reason
            ).inc()
    elif isinstance(event, TurnFailed):
        agent_failures.labels(agent=event.agent, reason=event.reason).inc()


def record_breakers(states: dict[str, str]) -> None:
    """Set the gauge to the breakers just read (agent -> closed/half_open/open)."""
    agent_circuit_breaker_state.clear()
    for agent, state in states.items():
        agent_circuit_breaker_state.labels(agent=agent).set(BREAKER_VALUES.get(state, 0))


def record_outcome(view: dict[str, Any]) -> None:
    debates_total.labels(status=view["status"]).inc()
    if view["status"] == "consensus":
        consensus_reached.inc()


def render() -> bytes:
    return generate_latest(REGISTRY)
