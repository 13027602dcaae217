"""Turn results of one debate that arrive together are stored in one append (group
commit), each exactly once, and no handler returns before its own result is stored."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from aragora.contracts import codec
from aragora.contracts.messages import (
    AgentTurnSucceeded,
    Command,
    DebateEvent,
    PhaseStarted,
    RunTurn,
    StartDebate,
    TurnCompleted,
)
from aragora.orchestrator.service import DebateService
from aragora.orchestrator.store import RecorderEventStore
from aragora.runtime.bus import Transient
from aragora.runtime.settings import Settings


class GatedStore(RecorderEventStore):
    """The real store whose appends can be held at a gate and made to fail."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.appends: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.calls = 0
        self.fail_call: int | None = None  # this call (counted from 1) raises

    def append(self, events: Sequence[DebateEvent], commands: Sequence[Command]) -> int:
        self.calls += 1
        self.entered.set()
        self.gate.wait(10)
        if self.calls == self.fail_call:
            raise RuntimeError("database went away")
        self.appends.append([type(e).__name__ for e in events])
        return super().append(events, commands)


def _msg(event: Any) -> Any:
    return SimpleNamespace(data=codec.encode(event))


def _result(cmd: RunTurn) -> AgentTurnSucceeded:
    return AgentTurnSucceeded(
        event_id=str(uuid.uuid5(uuid.UUID(cmd.turn_id), "result")),
        occurred_at=datetime.now(UTC),
        correlation_id=cmd.correlation_id,
        debate_id=cmd.debate_id,
        turn_id=cmd.turn_id,
        agent=cmd.agent,
        content=f"{cmd.agent} on {cmd.phase}",
    )


@pytest.fixture
def store(db_settings: Settings) -> GatedStore:
    s = GatedStore(db_settings)
    yield s  # type: ignore[misc]
    s.close()


async def _started(store: GatedStore, settings: Settings) -> tuple[DebateService, list[RunTurn]]:
    service = DebateService(store, settings, on_append=lambda: None)
    command = StartDebate(
        event_id=str(uuid.uuid4()),
        occurred_at=datetime.now(UTC),
        correlation_id="corr-batch",
        debate_id=str(uuid.uuid4()),
        topic="Do results share a commit?",
        agents=["demo-1", "demo-2", "demo-3"],
        rounds=2,
    )
    await service.handle_command(_msg(command))
    turns = [
        c
        for c in (
            codec.decode_command(e.payload)
            for e in store.outbox(0, 1000)
            if e.topic.startswith("cmd.")
        )
        if isinstance(c, RunTurn)
    ]
    assert len(turns) == 3
    return service, turns


async def _hold_first_append(store: GatedStore, first: asyncio.Task[None]) -> None:
    """Let ``first`` reach the store and stop it there (the gate is closed)."""
    store.entered.clear()
    store.gate.clear()
    await asyncio.to_thread(store.entered.wait, 10)
    assert not first.done()


async def test_results_arriving_during_an_append_share_the_next_one(
    store: GatedStore, db_settings: Settings
) -> None:
    service, turns = await _started(store, db_settings)
    store.appends.clear()
    first = asyncio.create_task(service.handle_agent_event(_msg(_result(turns[0]))))
    await _hold_first_append(store, first)
    # Two more results (one delivered twice) arrive while the first append is held.
    rest = [
        asyncio.create_task(service.handle_agent_event(_msg(_result(t))))
        for t in (turns[1], turns[2], turns[2])
    ]
    await asyncio.sleep(0.05)
    assert not any(t.done() for t in rest)  # nobody is acked before its result is stored
    store.gate.set()
    await asyncio.gather(first, *rest)

    assert store.appends == [
        ["TurnCompleted"],
        ["TurnCompleted", "TurnCompleted", "PhaseStarted"],
    ]
    events = store.load(turns[0].debate_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    completed = [e.turn_id for e in events if isinstance(e, TurnCompleted)]
    assert sorted(completed) == sorted(t.turn_id for t in turns)
    assert isinstance(events[-1], PhaseStarted) and events[-1].phase == "critique"


async def test_a_failed_group_append_fails_every_result_in_it_for_redelivery(
    store: GatedStore, db_settings: Settings
) -> None:
    service, turns = await _started(store, db_settings)
    first = asyncio.create_task(service.handle_agent_event(_msg(_result(turns[0]))))
    await _hold_first_append(store, first)
    rest = [asyncio.create_task(service.handle_agent_event(_msg(_result(t)))) for t in turns[1:]]
    await asyncio.sleep(0.05)
    store.fail_call = store.calls  # the held append fails; the group behind it is stored
    store.gate.set()
    with pytest.raises(RuntimeError):
        await first
    await asyncio.gather(*rest)

    # Only the stored results were acked; the first one is redelivered and then stored.
    stored = {e.turn_id for e in store.load(turns[0].debate_id) if isinstance(e, TurnCompleted)}
    assert stored == {turns[1].turn_id, turns[2].turn_id}
    await service.handle_agent_event(_msg(_result(turns[0])))
    stored = {e.turn_id for e in store.load(turns[0].debate_id) if isinstance(e, TurnCompleted)}
    assert stored == {t.turn_id for t in turns}


async def test_results_waiting_on_a_failed_group_are_retried_not_lost(
    store: GatedStore, db_settings: Settings
) -> None:
    service, turns = await _started(store, db_settings)
    first = asyncio.create_task(service.handle_agent_event(_msg(_result(turns[0]))))
    await _hold_first_append(store, first)
    second = asyncio.create_task(service.handle_agent_event(_msg(_result(turns[1]))))
    third = asyncio.create_task(service.handle_agent_event(_msg(_result(turns[2]))))
    await asyncio.sleep(0.05)
    store.fail_call = store.calls + 1  # ``second`` leads the group of two: its append fails
    store.gate.set()
    await first
    outcomes = await asyncio.gather(second, third, return_exceptions=True)
    assert isinstance(outcomes[0], RuntimeError)
    assert isinstance(outcomes[1], Transient)
    stored = {e.turn_id for e in store.load(turns[0].debate_id) if isinstance(e, TurnCompleted)}
    assert stored == {turns[0].turn_id}
