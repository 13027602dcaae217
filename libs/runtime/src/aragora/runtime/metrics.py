"""Prometheus metrics every service shares (the bus), and the metrics port of a service.

The gateway serves its registry on ``/metrics`` of the API port; the orchestrator and the
agent-runners have no HTTP server of their own, so :func:`serve_metrics` starts
prometheus_client's on ``ARAGORA_ORCHESTRATOR_METRICS_PORT`` /
``ARAGORA_AGENT_RUNNER_METRICS_PORT`` (0: off). ``METRICS_ENABLED=false`` switches every
metric of the process off: nothing is served and the bus samples nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from wsgiref.simple_server import WSGIServer

from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.metrics")

_state = {"enabled": True}

bus_consumer_pending = Gauge(
    "aragora_bus_consumer_pending",
    "Messages of a durable consumer's stream not yet delivered (lag; sampled every 5 s)",
    ["consumer"],
)
bus_consumer_ack_pending = Gauge(
    "aragora_bus_consumer_ack_pending",
    "Messages delivered to a durable consumer and not yet acked (sampled every 5 s)",
    ["consumer"],
)
bus_redeliveries = Counter(
    "aragora_bus_redeliveries",
    "Messages handled that had been delivered before (metadata.num_delivered > 1)",
    ["consumer"],
)
bus_messages = Counter(
    "aragora_bus_messages",
    "Messages handled by a consumer, by outcome (acked, retried, dead_lettered)",
    ["consumer", "outcome"],
)
bus_handle_seconds = Histogram(
    "aragora_bus_handle_seconds",
    "Time a consumer's handler took for one message, seconds",
    ["consumer"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0),
)


async def sample_lag(
    js: JetStreamContext, stream: str, durable: str, stopping: asyncio.Event, every: float = 5.0
) -> None:
    """Set a consumer's lag and ack-pending gauges from its server info until ``stopping``."""
    pending = bus_consumer_pending.labels(durable)
    ack_pending = bus_consumer_ack_pending.labels(durable)
    while not stopping.is_set():
        try:
            info = await js.consumer_info(stream, durable)
        except Exception as exc:  # not created yet, NATS down: try again later
            log.debug("consumer %s: no info (%s)", durable, type(exc).__name__)
        else:
            pending.set(info.num_pending or 0)
            ack_pending.set(info.num_ack_pending or 0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), every)


def configure_metrics(settings: Settings) -> None:
    _state["enabled"] = settings.metrics_enabled


def metrics_enabled() -> bool:
    return _state["enabled"]


def metrics_port(settings: Settings, service: str) -> int:
    """The metrics port of this process; 0 for none.

    Agent-runners started by ``aragora serve --runners N`` are named ``agent-runner-k``
    (ARAGORA_INSTANCE_ID): runner k takes the configured port + k - 1, so replicas on one
    host never collide. One runner per container (compose, Kubernetes) uses the port as is.
    """
    if not settings.metrics_enabled:
        return 0
    if service == "orchestrator":
        return settings.orchestrator_metrics_port
    if service == "ratelimit":
        return settings.ratelimit_metrics_port
    if service == "agent-runner" and settings.agent_runner_metrics_port:
        found = re.fullmatch(r"agent-runner-(\d+)", settings.instance_id)
        offset = int(found.group(1)) - 1 if found else 0
        return settings.agent_runner_metrics_port + offset
    return 0


def serve_metrics(settings: Settings, service: str) -> WSGIServer | None:
    """Serve the process's registry on its metrics port (a daemon thread); None if off.

    A port already taken is logged and skipped: metrics never stop a service."""
    port = metrics_port(settings, service)
    if not port:
        return None
    try:
        server, _ = start_http_server(port, addr=settings.api_host)
    except OSError as exc:
        log.error("metrics port %d not served: %s", port, exc)
        return None
    log.info("metrics on http://%s:%d/metrics", settings.api_host, port)
    return server
