"""Outbox relay against a real nats-server: ordered, deduplicated, resumable."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aragora.contracts.messages import StartDebate
from aragora.contracts.subjects import COMMANDS_STREAM, EVENTS_STREAM
from aragora.orchestrator import domain
from aragora.orchestrator.relay import OutboxRelay
from aragora.orchestrator.store import RecorderEventStore
from aragora.runtime import bus
from aragora.runtime.natsserver import EmbeddedNats
from aragora.runtime.settings import Settings
from tests.conftest import make_settings


def _decision() -> domain.Decision:
    command = StartDebate(
        event_id=str(uuid.uuid4()),
        occurred_at=datetime.now(UTC),
        correlation_id="corr-relay",
        debate_id=str(uuid.uuid4()),
        topic="relay me",
        agents=["demo-1", "demo-2", "demo-3"],
        rounds=1,
    )
    return domain.decide_start(
        command, domain.Ctx(now=datetime.now(UTC), ids=lambda: str(uuid.uuid4()))
    )


@pytest.fixture
def store(db_settings: Settings) -> RecorderEventStore:
    s = RecorderEventStore(db_settings)
    yield s  # type: ignore[misc]
    s.close()


async def test_relay_publishes_events_and_commands_once_even_when_replayed(
    nats_server: EmbeddedNats, store: RecorderEventStore
) -> None:
    conn = await bus.connect([nats_server.url], name="test")
    await bus.ensure_streams(conn.js)
    decision = _decision()
    store.append(decision.events, decision.commands)

    relay = OutboxRelay(store, conn)
    assert await relay.relay_once() == 6
    assert store.relay_position() == 6

    # A crash after publishing but before saving the position: a new relay starts from 0.
    again = OutboxRelay(store, conn)
    assert await again.relay_once() == 6
    events = await conn.js.stream_info(EVENTS_STREAM.name)
    commands = await conn.js.stream_info(COMMANDS_STREAM.name)
    assert events.state.messages == 3  # the duplicates were dropped by Nats-Msg-Id
    assert commands.state.messages == 3

    sub = await conn.js.subscribe("aragora.evt.debate.>", ordered_consumer=True)
    received = [await sub.next_msg(timeout=2) for _ in range(3)]
    debate_id = decision.events[0].debate_id
    assert [m.subject for m in received] == [
        f"aragora.evt.debate.{debate_id}.created",
        f"aragora.evt.debate.{debate_id}.round_started",
        f"aragora.evt.debate.{debate_id}.phase_started",
    ]
    assert received[0].headers is not None
    assert received[0].headers["Nats-Msg-Id"] == decision.events[0].event_id
    await conn.close()


async def test_relay_resumes_after_nats_comes_back(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    store = RecorderEventStore(make_settings(tmp_path))
    conn = await bus.connect([nats_server.url], name="test")
    await bus.ensure_streams(conn.js)
    relay = OutboxRelay(store, conn, poll_seconds=0.05)
    nats_server.stop()
    decision = _decision()
    store.append(decision.events, decision.commands)
    with pytest.raises(ConnectionError):
        await relay.relay_once()
    assert store.relay_position() == 0
    nats_server.start()
    task = asyncio.create_task(relay.run())
    for _ in range(200):
        if store.relay_position() == 6:
            break
        await asyncio.sleep(0.05)
    await relay.drain()
    await asyncio.wait_for(task, 5)
    assert store.relay_position() == 6
    info = await conn.js.stream_info(EVENTS_STREAM.name)
    assert info.state.messages == 3
    await conn.close()
    store.close()
