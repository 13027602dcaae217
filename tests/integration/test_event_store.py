"""The event store port against SQLite and PostgreSQL (one contract, both backends)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from aragora.contracts.messages import RoundStarted, StartDebate
from aragora.orchestrator import domain
from aragora.orchestrator.store import ConcurrencyError, RecorderEventStore
from aragora.runtime.settings import Settings


def _start() -> StartDebate:
    return StartDebate(
        event_id=str(uuid.uuid4()),
        occurred_at=datetime.now(UTC),
        correlation_id="corr-test",
        debate_id=str(uuid.uuid4()),
        topic="Is this stored?",
        agents=["demo-1", "demo-2"],
        rounds=1,
    )


def _new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def store(db_settings: Settings) -> RecorderEventStore:
    s = RecorderEventStore(db_settings)
    yield s  # type: ignore[misc]
    s.close()


def test_append_then_load_returns_the_events_in_seq_order(store: RecorderEventStore) -> None:
    decision = domain.decide_start(_start(), domain.Ctx(now=datetime.now(UTC), ids=_new_id))
    store.append(decision.events, decision.commands)
    loaded = store.load(decision.events[0].debate_id)
    assert loaded == decision.events


def test_a_second_writer_at_the_same_seq_is_refused(store: RecorderEventStore) -> None:
    decision = domain.decide_start(_start(), domain.Ctx(now=datetime.now(UTC), ids=_new_id))
    store.append(decision.events, decision.commands)
    rival = RoundStarted(
        event_id=_new_id(),
        occurred_at=datetime.now(UTC),
        correlation_id="x",
        debate_id=decision.events[0].debate_id,
        seq=3,
        round=9,
    )
    with pytest.raises(ConcurrencyError):
        store.append([rival], [])
    assert store.load(rival.debate_id) == decision.events  # nothing partial was written


def test_outbox_holds_events_and_commands_in_one_order(store: RecorderEventStore) -> None:
    decision = domain.decide_start(_start(), domain.Ctx(now=datetime.now(UTC), ids=_new_id))
    last = store.append(decision.events, decision.commands)
    entries = store.outbox(0, 100)
    assert [e.topic for e in entries] == [
        "debate.created",
        "debate.round_started",
        "debate.phase_started",
        "cmd.agent.run_turn",
        "cmd.agent.run_turn",
    ]
    assert entries[-1].position == last
    assert store.outbox(entries[2].position, 100) == entries[3:]


def test_relay_position_is_durable_and_only_moves_forward(
    store: RecorderEventStore, db_settings: Settings
) -> None:
    assert store.relay_position() == 0
    store.set_relay_position(5)
    store.set_relay_position(3)
    reopened = RecorderEventStore(db_settings)
    try:
        assert reopened.relay_position() == 5
    finally:
        reopened.close()


def test_active_debates_are_those_without_a_terminal_event(store: RecorderEventStore) -> None:
    first = domain.decide_start(_start(), domain.Ctx(now=datetime.now(UTC), ids=_new_id))
    second = domain.decide_start(_start(), domain.Ctx(now=datetime.now(UTC), ids=_new_id))
    store.append(first.events, first.commands)
    store.append(second.events, second.commands)
    state = domain.replay(second.events)
    assert state is not None
    ended = domain.decide_cancel(state, domain.Ctx(now=datetime.now(UTC), ids=_new_id), "x", "c")
    store.append(ended.events, [])
    assert store.active_debate_ids() == [first.events[0].debate_id]
