"""Two orchestrator replicas on one store: the loser of a race re-reads and re-decides."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from aragora.contracts import codec
from aragora.contracts.messages import AgentTurnSucceeded, RunTurn, StartDebate, TurnCompleted
from aragora.contracts.values import Vote
from aragora.orchestrator.service import DebateService
from aragora.orchestrator.store import RecorderEventStore
from aragora.runtime.settings import Settings


def _msg(event: Any) -> Any:
    return SimpleNamespace(data=codec.encode(event))


def _result(cmd: RunTurn, n: int) -> AgentTurnSucceeded:
    vote = Vote(choice="demo-1", confidence=0.9) if cmd.phase == "vote" else None
    return AgentTurnSucceeded(
        event_id=f"{cmd.turn_id}-{n}",
        occurred_at=datetime.now(UTC),
        correlation_id=cmd.correlation_id,
        debate_id=cmd.debate_id,
        turn_id=cmd.turn_id,
        agent=cmd.agent,
        content=f"{cmd.agent} says something about round {cmd.round} {cmd.phase}",
        vote=vote,
    )


@pytest.fixture
def store(db_settings: Settings) -> RecorderEventStore:
    s = RecorderEventStore(db_settings)
    yield s  # type: ignore[misc]
    s.close()


async def test_racing_replicas_record_each_turn_once_and_end_once(
    store: RecorderEventStore, db_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aragora.debate.orchestrator")
    replicas = [DebateService(store, db_settings, on_append=lambda: None) for _ in range(2)]
    command = StartDebate(
        event_id=str(uuid.uuid4()),
        occurred_at=datetime.now(UTC),
        correlation_id="corr-race",
        debate_id=str(uuid.uuid4()),
        topic="Who writes first?",
        agents=["demo-1", "demo-2", "demo-3"],
        rounds=1,
    )
    # Both replicas receive the start (a redelivery): only one debate.created is stored.
    await asyncio.gather(*(r.handle_command(_msg(command)) for r in replicas))
    assert [type(e).__name__ for e in store.load(command.debate_id)][:1] == ["DebateCreated"]

    answered: set[str] = set()
    for _ in range(200):
        pending = [
            c
            for c in (
                codec.decode_command(e.payload)
                for e in store.outbox(0, 10_000)
                if e.topic.startswith("cmd.")
            )
            if c.event_id not in answered and isinstance(c, RunTurn)
        ]
        if not pending:
            break
        for cmd in pending:
            answered.add(cmd.event_id)
            # Every result reaches BOTH replicas at once, each with its own stale cache.
            await asyncio.gather(
                replicas[0].handle_agent_event(_msg(_result(cmd, 0))),
                replicas[1].handle_agent_event(_msg(_result(cmd, 1))),
            )
    events = store.load(command.debate_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    turns = [e.turn_id for e in events if isinstance(e, TurnCompleted)]
    assert len(turns) == len(set(turns)) == len(answered)
    terminal = [e for e in events if type(e).__name__ in ("DebateCompleted", "DebateFailed")]
    assert len(terminal) == 1
    # The race really happened: a replica lost an append and decided again.
    assert any("concurrent append" in r.getMessage() for r in caplog.records)


async def test_breaker_news_on_the_agent_subjects_is_ignored_not_dead_lettered(
    store: RecorderEventStore, db_settings: Settings
) -> None:
    from aragora.contracts.messages import AgentBreakerChanged

    service = DebateService(store, db_settings, on_append=lambda: None)
    news = AgentBreakerChanged(
        event_id=str(uuid.uuid4()),
        occurred_at=datetime.now(UTC),
        correlation_id="corr-breaker",
        agent="demo-flaky",
        state="open",
        previous="closed",
    )
    msg = SimpleNamespace(data=codec.encode(news), subject="aragora.evt.agent.breaker.demo-flaky")
    await service.handle_agent_event(msg)  # no Poison raised, nothing stored
    assert store.outbox(0, 10) == []
