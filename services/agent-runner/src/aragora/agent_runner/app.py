"""Wiring of the agent-runner process."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aragora.agent_runner.rpc import AgentRpc
from aragora.agent_runner.service import TurnRunner
from aragora.agent_runner.traced_http import http_client
from aragora.contracts import subjects
from aragora.contracts.subjects import COMMANDS_STREAM
from aragora.runtime import bus, health
from aragora.runtime.agents import load_registry
from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.agent_runner")


async def run(settings: Settings, stop: asyncio.Event) -> None:
    async with health.serving(settings, "agent-runner") as probe:
        await _run(settings, stop, probe)


async def _run(settings: Settings, stop: asyncio.Event, probe: health.Health) -> None:
    registry = load_registry(settings)
    conn = await bus.connect(settings.nats_servers, name="aragora-agent-runner")
    await bus.ensure_streams(conn.js, replicas=settings.stream_replicas)
    async with http_client(settings.agent_concurrency) as http:
        runner = TurnRunner(registry, settings, conn.js, http, live=conn.nc)
        consumer = bus.Consumer(
            conn,
            bus.ConsumerSpec(
                stream=COMMANDS_STREAM.name,
                durable="agent-runner",
                filter_subject=subjects.AGENT_COMMANDS,
                # The runner reports its own timeouts; ack_wait only bounds a dead runner.
                ack_wait=10.0,
                max_deliver=5,
                concurrency=settings.agent_concurrency,
            ),
            runner.handle,
        )
        task = asyncio.create_task(consumer.run(), name="run-turns")
        rpc = AgentRpc(registry, settings, http)  # debug routes' agent test / connectivity
        await rpc.start(conn.nc)
        # Providers are not checked: their outages are the circuit breakers' business,
        # and a runner that cannot reach one still reports that turn's failure.
        probe.ready(
            {
                "nats": health.nats_check(conn),
                "jetstream": health.jetstream_check(conn),
                **health.consumer_checks(consumer),
            }
        )
        log.info(
            "agent-runner ready",
            extra={"agents": ",".join(sorted(registry.agents)), "mode": registry.mode},
        )
        await stop.wait()
        probe.stopping()
        log.info("agent-runner stopping: finishing in-flight turns")
        await rpc.stop()
        await consumer.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, timeout=10)
        await runner.aclose()
    await conn.close()
