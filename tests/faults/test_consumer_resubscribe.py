"""A consumer whose fetches fail re-subscribes without leaking its old subscription.

Found by the orchestrator-kill drill: after a restart under load, nats.py's fetch raised a
bare ``asyncio.TimeoutError`` (not ``nats.errors.TimeoutError``); the consumer took it for a
broken subscription and re-subscribed, leaving the old one registered. Messages a late
pull request delivered to it then sat there until ack_wait (a debate paused for 30 s), and
at shutdown the connection's drain waited on its pending queue until the supervisor gave up
and SIGKILLed the service.
"""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from aragora.contracts.subjects import EVENTS_STREAM
from aragora.runtime import bus
from aragora.runtime.natsserver import EmbeddedNats

pytestmark = [pytest.mark.faults, pytest.mark.timeout(60)]


async def _until(check: object, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_failed_fetches_neither_leak_subscriptions_nor_hold_up_close(
    nats_server: EmbeddedNats, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = await bus.connect([nats_server.url], name="test")
    await bus.ensure_streams(conn.js)
    baseline = len(conn.nc._subs)
    failures: list[BaseException] = [
        *(RuntimeError("fetch broke") for _ in range(3)),
        *(TimeoutError() for _ in range(3)),  # as nats.py raises it at times: not a failure
    ]
    subscriptions = 0
    real_fetch = JetStreamContext.PullSubscription.fetch
    real_subscribe = conn.js.pull_subscribe

    async def flaky_fetch(self: JetStreamContext.PullSubscription, *a: object, **k: object):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop(0)
        return await real_fetch(self, *a, **k)  # type: ignore[arg-type]

    async def counting_subscribe(*a: object, **k: object):  # type: ignore[no-untyped-def]
        nonlocal subscriptions
        subscriptions += 1
        return await real_subscribe(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(JetStreamContext.PullSubscription, "fetch", flaky_fetch)
    monkeypatch.setattr(conn.js, "pull_subscribe", counting_subscribe)
    seen: list[str] = []

    async def record(msg: Msg) -> None:
        seen.append(msg.subject)

    consumer = bus.Consumer(
        conn,
        bus.ConsumerSpec(
            stream=EVENTS_STREAM.name, durable="flaky", filter_subject="aragora.evt.test.>"
        ),
        record,
    )
    task = asyncio.create_task(consumer.run())
    await bus.publish(conn.js, "aragora.evt.test.one", b"{}", msg_id="one")
    await _until(lambda: seen == ["aragora.evt.test.one"] and not failures)
    # One new subscription per real failure, none for timeouts; only the last one is live.
    assert subscriptions == 4
    assert len(conn.nc._subs) == baseline + 1
    await consumer.stop()
    await asyncio.wait_for(task, 5)
    assert len(conn.nc._subs) == baseline
    await asyncio.wait_for(conn.close(), 5)
