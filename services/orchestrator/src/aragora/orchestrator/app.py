"""Wiring of the orchestrator process: store, relay, consumers, deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aragora.contracts import subjects
from aragora.contracts.subjects import COMMANDS_STREAM, EVENTS_STREAM
from aragora.orchestrator.relay import OutboxRelay
from aragora.orchestrator.service import DebateService
from aragora.orchestrator.store import RecorderEventStore
from aragora.runtime import bus, health
from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.orchestrator")


async def run(settings: Settings, stop: asyncio.Event) -> None:
    async with health.serving(settings, "orchestrator") as probe:
        await _run(settings, stop, probe)


async def _run(settings: Settings, stop: asyncio.Event, probe: health.Health) -> None:
    store = await asyncio.to_thread(RecorderEventStore, settings)
    conn = await bus.connect(settings.nats_servers, name="aragora-orchestrator")
    await bus.ensure_streams(conn.js, replicas=settings.stream_replicas)
    relay = OutboxRelay(store, conn)
    service = DebateService(store, settings, on_append=relay.wake)
    await service.recover()
    commands = bus.Consumer(
        conn,
        bus.ConsumerSpec(
            stream=COMMANDS_STREAM.name,
            durable="orchestrator-commands",
            filter_subject=subjects.DEBATE_COMMANDS,
            concurrency=32,
        ),
        service.handle_command,
    )
    results = bus.Consumer(
        conn,
        bus.ConsumerSpec(
            stream=EVENTS_STREAM.name,
            durable="orchestrator-agent-events",
            filter_subject=subjects.AGENT_EVENTS,
            concurrency=64,
        ),
        service.handle_agent_event,
    )
    tasks = [
        asyncio.create_task(relay.run(), name="relay"),
        asyncio.create_task(commands.run(), name="commands"),
        asyncio.create_task(results.run(), name="agent-results"),
        asyncio.create_task(service.run_deadlines(stop), name="deadlines"),
    ]
    backend = "postgresql" if settings.uses_postgres else "sqlite"
    probe.ready(
        {
            "nats": health.nats_check(conn),
            "jetstream": health.jetstream_check(conn),
            # a read of the store (the relay's position), in a thread of its own
            "event_store": health.blocking_check(
                lambda: {"backend": backend, "relay_position": store.relay_position()}
            ),
            **health.consumer_checks(commands, results),
        }
    )
    log.info("orchestrator ready", extra={"nats": ",".join(settings.nats_servers)})
    await stop.wait()
    probe.stopping()
    log.info("orchestrator stopping: finishing in-flight work, draining the outbox")
    await asyncio.gather(commands.stop(), results.stop())
    await relay.drain()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=20)
    for task in tasks:
        task.cancel()
    with contextlib.suppress(Exception):
        await conn.close()
    await asyncio.to_thread(store.close)
