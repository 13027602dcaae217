"""Prometheus metrics every service shares (the bus), and the metrics port of a service.

The gateway serves its registry on ``/metrics`` of the API port; the orchestrator, the
agent-runners and the ratelimit service have no API, so :mod:`aragora.runtime.health`
serves ``/metrics`` beside their health endpoints on ``ARAGORA_<SERVICE>_METRICS_PORT``
(0: off). ``METRICS_ENABLED=false`` switches every metric of the process off: ``/metrics``
answers 404 and the bus samples nothing (the health endpoints stay).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge, Histogram

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


def service_port(settings: Settings, service: str) -> int:
    """The port of a process without an API (metrics and health, :mod:`aragora.runtime.health`).

    ``ARAGORA_<SERVICE>_METRICS_PORT`` (a settings field ``<service>_metrics_port``); 0 for
    none. Agent-runners started by ``aragora serve --runners N`` are named
    ``agent-runner-k`` (ARAGORA_INSTANCE_ID): runner k takes the configured port + k - 1,
    so replicas on one host never collide. One runner per container (compose, Kubernetes)
    uses the port as is. Served even when METRICS_ENABLED=false (health only then).
    """
    port = int(getattr(settings, f"{service.replace('-', '_')}_metrics_port", 0) or 0)
    if port and service == "agent-runner":
        found = re.fullmatch(r"agent-runner-(\d+)", settings.instance_id)
        port += int(found.group(1)) - 1 if found else 0
    return port


def metrics_port(settings: Settings, service: str) -> int:
    """The port this process serves ``/metrics`` on; 0 for none (or METRICS_ENABLED=false)."""
    return service_port(settings, service) if settings.metrics_enabled else 0
