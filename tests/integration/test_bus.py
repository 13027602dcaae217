"""The JetStream consumer loop against a real nats-server: ack, retry, dead-letter, recovery."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from nats.aio.msg import Msg

from aragora.contracts.subjects import EVENTS_STREAM
from aragora.runtime import bus
from aragora.runtime.natsserver import EmbeddedNats


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def _consumer(
    conn: bus.Connection, handler: Callable[[Msg], Awaitable[None]], **spec: object
) -> tuple[bus.Consumer, asyncio.Task[None]]:
    consumer = bus.Consumer(
        conn,
        bus.ConsumerSpec(
            stream=EVENTS_STREAM.name,
            durable="test-consumer",
            filter_subject="aragora.evt.test.>",
            **spec,  # type: ignore[arg-type]
        ),
        handler,
    )
    return consumer, asyncio.create_task(consumer.run())


@pytest.fixture
async def conn(nats_server: EmbeddedNats) -> bus.Connection:
    connection = await bus.connect([nats_server.url], name="test")
    await bus.ensure_streams(connection.js)
    yield connection  # type: ignore[misc]
    await connection.close()


async def test_transient_failures_are_redelivered_until_the_effect_succeeds(
    conn: bus.Connection,
) -> None:
    attempts: list[int] = []

    async def flaky(msg: Msg) -> None:
        attempts.append(msg.metadata.num_delivered)
        if len(attempts) < 3:
            raise bus.Transient("database briefly away")

    consumer, task = await _consumer(conn, flaky)
    await bus.publish(conn.js, "aragora.evt.test.1", b"{}", msg_id="m1")
    await _until(lambda: consumer.handled == 1)
    assert attempts == [1, 2, 3]
    await consumer.stop()
    await asyncio.wait_for(task, 5)


async def test_poison_messages_are_dead_lettered_with_the_reason(conn: bus.Connection) -> None:
    async def refuse(msg: Msg) -> None:
        raise bus.Poison("cannot decode")

    consumer, task = await _consumer(conn, refuse)
    sub = await conn.js.subscribe("aragora.evt.deadletter.>", ordered_consumer=True)
    await bus.publish(conn.js, "aragora.evt.test.2", b"garbage", msg_id="m2")
    letter = await sub.next_msg(timeout=5)
    body = json.loads(letter.data)
    assert letter.subject == "aragora.evt.deadletter.test-consumer"
    assert body["type"] == "system.dead_letter"
    assert (body["reason"], body["payload"], body["subject"]) == (
        "cannot decode",
        "garbage",
        "aragora.evt.test.2",
    )
    await consumer.stop()
    await asyncio.wait_for(task, 5)


async def test_a_message_that_keeps_failing_is_dead_lettered_after_max_deliver(
    conn: bus.Connection,
) -> None:
    attempts: list[int] = []

    async def broken(msg: Msg) -> None:
        attempts.append(msg.metadata.num_delivered)
        raise RuntimeError("bug")

    consumer, task = await _consumer(conn, broken, max_deliver=2)
    sub = await conn.js.subscribe("aragora.evt.deadletter.>", ordered_consumer=True)
    await bus.publish(conn.js, "aragora.evt.test.3", b"{}", msg_id="m3")
    letter = await sub.next_msg(timeout=10)
    assert "gave up after 2 deliveries" in json.loads(letter.data)["reason"]
    assert attempts == [1, 2]
    await consumer.stop()
    await asyncio.wait_for(task, 5)


async def test_pull_consumer_recovers_by_itself_after_a_server_restart(
    nats_server: EmbeddedNats, conn: bus.Connection
) -> None:
    seen: list[str] = []

    async def record(msg: Msg) -> None:
        seen.append(msg.subject)

    consumer, task = await _consumer(conn, record)
    await bus.publish(conn.js, "aragora.evt.test.before", b"{}", msg_id="b")
    await _until(lambda: len(seen) == 1)

    nats_server.stop()
    await asyncio.sleep(0.5)
    nats_server.start()
    await _until(lambda: conn.nc.is_connected)
    await bus.publish(conn.js, "aragora.evt.test.after", b"{}", msg_id="a")
    await _until(lambda: len(seen) == 2, timeout=15)
    assert seen == ["aragora.evt.test.before", "aragora.evt.test.after"]
    await consumer.stop()
    await asyncio.wait_for(task, 5)


async def test_publish_with_the_same_msg_id_is_stored_once(conn: bus.Connection) -> None:
    first = await bus.publish(conn.js, "aragora.evt.test.dup", b"{}", msg_id="same")
    second = await bus.publish(conn.js, "aragora.evt.test.dup", b"{}", msg_id="same")
    assert first == second
    info = await conn.js.stream_info(EVENTS_STREAM.name)
    assert info.state.messages == 1


async def test_stop_bounds_in_flight_work_and_leaves_it_for_redelivery(
    conn: bus.Connection,
) -> None:
    started = asyncio.Event()
    attempts: list[int] = []

    async def slow(msg: Msg) -> None:
        attempts.append(msg.metadata.num_delivered)
        if len(attempts) == 1:
            started.set()
            await asyncio.sleep(60)

    consumer, task = await _consumer(conn, slow, ack_wait=1.0)
    await bus.publish(conn.js, "aragora.evt.test.slow", b"{}", msg_id="slow")
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(consumer.stop(grace=0.2), 5)
    await asyncio.wait_for(task, 5)
    assert consumer.handled == 0, attempts  # not acked: cancelled after the grace period

    again, task = await _consumer(conn, slow, ack_wait=1.0)
    await _until(lambda: again.handled == 1)
    assert attempts == [1, 2]
    await again.stop()
    await asyncio.wait_for(task, 5)
