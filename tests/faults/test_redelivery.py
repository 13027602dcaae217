"""Every debate event delivered (at least) twice to the gateway leaves its read model as it was.

The gateway's durable consumer ``gateway-projection`` is deleted while the stack runs: the
gateway's consumer loop re-creates it (deliver policy ALL), so JetStream replays the whole
stream to it. Applying an event at or below the stored ``last_seq`` must change nothing.
The consumer is deleted twice: once while debates run (replay interleaved with live
events), once when all are over (so every event of every debate is delivered again).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nats
import nats.js.errors
import pytest

from aragora.contracts.subjects import EVENTS_STREAM
from tests.e2e.stack import Stack
from tests.faults.conftest import (
    StackFactory,
    assert_all_exactly_once,
    post_debates,
    wait_all_finished,
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

DURABLE = "gateway-projection"


async def _delete_durable(url: str) -> int:
    """Delete the gateway's durable; returns how many deliveries it had made."""
    nc = await nats.connect(url, connect_timeout=5)
    try:
        js = nc.jetstream()
        info = await js.consumer_info(EVENTS_STREAM.name, DURABLE)
        assert await js.delete_consumer(EVENTS_STREAM.name, DURABLE)
        delivered: int = info.delivered.consumer_seq
        return delivered
    finally:
        await nc.close()


async def _wait_replayed(url: str, at_least: int, timeout: float) -> float:
    """Wait until the re-created durable has delivered ``at_least`` messages and has
    nothing pending or unacked; returns the seconds it took."""
    nc = await nats.connect(url, connect_timeout=5)
    started = time.monotonic()
    state: Any = "not re-created"
    try:
        js = nc.jetstream()
        while time.monotonic() - started < timeout:
            try:
                info = await js.consumer_info(EVENTS_STREAM.name, DURABLE)
            except nats.js.errors.NotFoundError:
                await asyncio.sleep(0.2)
                continue
            state = info
            if (
                info.delivered.consumer_seq >= at_least
                and info.num_pending == 0
                and info.num_ack_pending == 0
            ):
                return time.monotonic() - started
            await asyncio.sleep(0.2)
    finally:
        await nc.close()
    raise AssertionError(f"{DURABLE} did not replay {at_least} events in {timeout}s: {state}")


def snapshot(stack: Stack, debate_ids: list[str]) -> dict[str, Any]:
    return {d: (stack.debate(d), stack.events(d)) for d in debate_ids}


def replay_all(stack: Stack, total_events: int) -> None:
    url = f"nats://127.0.0.1:{stack.nats_port}"
    before = asyncio.run(_delete_durable(url))
    took = asyncio.run(_wait_replayed(url, total_events, timeout=90))
    print(f"{DURABLE} deleted after {before} deliveries; replayed {total_events}+ in {took:.1f}s")


def test_every_event_delivered_twice_leaves_the_read_model_unchanged(
    stack_factory: StackFactory,
) -> None:
    stack = stack_factory()
    first = post_debates(stack, 10, rounds=2, tag="a")
    wait_all_finished(stack, first)
    before = snapshot(stack, first)
    total = sum(len(events) for _, events in before.values())

    # Replay while other debates are running.
    second = post_debates(stack, 10, rounds=2, tag="b")
    replay_all(stack, total)
    wait_all_finished(stack, second)
    assert snapshot(stack, first) == before
    assert_all_exactly_once(stack, [*first, *second])

    # Replay everything once more, now that all debates are over.
    before = snapshot(stack, [*first, *second])
    total = sum(len(events) for _, events in before.values())
    replay_all(stack, total)
    assert snapshot(stack, [*first, *second]) == before
    assert_all_exactly_once(stack, [*first, *second])
