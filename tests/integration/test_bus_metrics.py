"""Bus metrics against a real nats-server: redeliveries, outcomes, consumer lag."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.msg import Msg

from aragora.contracts.subjects import EVENTS_STREAM
from aragora.runtime import bus
from aragora.runtime.natsserver import EmbeddedNats
from tests.integration.gateway_harness import eventually, metric

pytestmark = pytest.mark.integration


async def test_redeliveries_outcomes_and_lag_are_measured(nats_server: EmbeddedNats) -> None:
    conn = await bus.connect([nats_server.url], name="test")
    await bus.ensure_streams(conn.js)
    durable = "metrics-consumer"
    for i in range(5):  # waiting before the consumer starts: lag 5
        await bus.publish(conn.js, f"aragora.evt.mtest.{i}", b"{}", msg_id=f"lag-{i}")
    attempts: list[int] = []
    release = asyncio.Event()

    async def handler(msg: Msg) -> None:
        await release.wait()
        attempts.append(msg.metadata.num_delivered)
        if msg.subject.endswith(".0") and msg.metadata.num_delivered == 1:
            raise bus.Transient("first try fails")
        if msg.subject.endswith(".1"):
            raise bus.Poison("never")

    consumer = bus.Consumer(
        conn,
        bus.ConsumerSpec(
            stream=EVENTS_STREAM.name, durable=durable, filter_subject="aragora.evt.mtest.>"
        ),
        handler,
    )
    task = asyncio.create_task(consumer.run())

    async def pending() -> float:
        return metric("aragora_bus_consumer_pending", {"consumer": durable})

    # One message is being handled (blocked), four wait: a sample says so.
    await eventually(pending, lambda v: v == 4, timeout=12)  # sampled every 5 s
    release.set()
    await eventually(lambda: asyncio.sleep(0, consumer.handled), lambda n: n == 4, timeout=10)
    await consumer.stop()
    await asyncio.wait_for(task, 5)
    await conn.close()

    def count(name: str, **labels: str) -> float:
        return metric(name, {"consumer": durable, **labels})

    assert count("aragora_bus_redeliveries_total") == 1
    assert count("aragora_bus_messages_total", outcome="acked") == 4
    assert count("aragora_bus_messages_total", outcome="retried") == 1
    assert count("aragora_bus_messages_total", outcome="dead_lettered") == 1
    assert count("aragora_bus_handle_seconds_count") == 6
