"""Wiring of the audit process: database, bus consumer, responders, health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aragora.audit.service import AuditService, consumer_spec, sample_lag
from aragora.audit.store import AuditStore
from aragora.runtime import bus, health
from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.audit")


@contextlib.asynccontextmanager
async def running(
    settings: Settings, probe: health.Health | None = None
) -> AsyncIterator[AuditService]:
    """The service recording, answering and verifying while the block runs.

    ``probe`` (:func:`aragora.runtime.health.serving`) is told ready, with its checks,
    once everything is up."""
    store = AuditStore(settings)
    await asyncio.to_thread(store.open)
    conn = await bus.connect(settings.nats_servers, name="aragora-audit")
    await bus.ensure_streams(conn.js, replicas=settings.stream_replicas)
    service = AuditService(store)
    consumer = bus.Consumer(conn, consumer_spec(), service.handle)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(consumer.run(), name="audit-consumer"),
        asyncio.create_task(
            service.verify_every(settings.audit_verify_interval_seconds, stop), name="verify"
        ),
    ]
    if settings.metrics_enabled:
        tasks.append(asyncio.create_task(sample_lag(conn.js, stop), name="audit-lag"))
    await service.start_rpc(conn.nc)
    where = "PostgreSQL" if store.postgres else str(AuditStore.sqlite_path(settings))
    if probe is not None:
        backend = "postgresql" if store.postgres else "sqlite"
        probe.ready(
            {
                "nats": health.nats_check(conn),
                "jetstream": health.jetstream_check(conn),
                "audit_store": health.blocking_check(
                    lambda: {"backend": backend, "last_seq": store.last_seq()}
                ),
                **health.consumer_checks(consumer),
            }
        )
    log.info("audit ready", extra={"store": where})
    try:
        yield service
    finally:
        stop.set()
        await service.stop_rpc()
        await consumer.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await conn.close()
        await asyncio.to_thread(store.close)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Health and metrics on ARAGORA_AUDIT_METRICS_PORT (``/healthz``, ``/readyz``)."""
    async with health.serving(settings, "audit") as probe, running(settings, probe):
        await stop.wait()
        probe.stopping()
        log.info("audit stopping")
