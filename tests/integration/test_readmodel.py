"""The gateway's read model on SQLite and PostgreSQL: ordered, idempotent, gap-refusing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aragora.contracts import codec
from aragora.contracts.messages import (
    AgentTurnSucceeded,
    DebateCompleted,
    DebateCreated,
    DebateEvent,
    DebateFailed,
    PhaseStarted,
    StartDebate,
    TurnCompleted,
    Vote,
)
from aragora.gateway.projection import initial_view
from aragora.gateway.readmodel import Applied, ReadModel
from aragora.orchestrator import domain
from aragora.runtime.settings import Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AGENTS = ["demo-1", "demo-2", "demo-3"]
_UNSET: Any = object()


def debate_events(
    debate_id: str | None = None,
    *,
    agents: list[str] = AGENTS,
    rounds: int = 1,
    votes: dict[str, str | None] = _UNSET,
    topic: str = "Tabs or spaces?",
    now: datetime = T0,
    requested_by: str = "",
    public: bool = False,
) -> list[DebateEvent]:
    """A whole debate's events, decided by the orchestrator's pure rules.

    Every agent answers every turn; in the vote each agent votes as ``votes`` says
    (default: everyone for the second agent, so the debate ends in consensus).
    Event ids are fresh UUIDs, so they are unique across debates (they are Nats-Msg-Ids).
    """
    debate_id = debate_id or str(uuid.uuid4())
    votes = {a: agents[1] for a in agents} if votes is _UNSET else votes

    def ids() -> str:
        return str(uuid.uuid4())

    command = StartDebate(
        event_id=ids(),
        occurred_at=now,
        correlation_id="corr-readmodel",
        debate_id=debate_id,
        topic=topic,
        agents=agents,
        rounds=rounds,
        requested_by=requested_by,
        public=public,
    )
    ctx = domain.Ctx(now=now, ids=ids)
    decision = domain.decide_start(command, ctx)
    events = list(decision.events)
    pending = list(decision.commands)
    state = domain.replay(events)
    assert state is not None
    while pending and not state.is_over:
        cmd = pending.pop(0)
        choice = votes.get(cmd.agent) if cmd.phase == "vote" else None
        result = AgentTurnSucceeded(
            event_id=ids(),
            occurred_at=now,
            correlation_id=cmd.correlation_id,
            debate_id=cmd.debate_id,
            turn_id=cmd.turn_id,
            agent=cmd.agent,
            content=f"{cmd.phase} by {cmd.agent}",
            vote=Vote(choice=choice, confidence=0.8, reasoning="best") if choice else None,
            latency_ms=12,
            model="demo-deterministic",
        )
        step = domain.decide_turn_result(state, result, ctx)
        for event in step.events:
            state = domain.evolve(state, event)
        events += step.events
        pending += step.commands
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    return events


def provisional(debate_id: str, created_at: datetime = T0, topic: str = "Tabs or spaces?") -> Any:
    return initial_view(debate_id, topic, AGENTS, 1, created_at.isoformat())


@pytest.fixture
async def readmodel(db_settings: Settings) -> AsyncIterator[ReadModel]:
    rm = ReadModel(db_settings)
    await rm.open()
    yield rm
    await rm.close()


async def apply_all(rm: ReadModel, events: list[DebateEvent]) -> None:
    for event in events:
        outcome, view = await rm.apply(event)
        assert outcome is Applied.APPLIED, event
        assert view is not None and view["last_seq"] == event.seq


def seqs(bodies: list[str]) -> list[int]:
    return [codec.decode_debate_event(b.encode()).seq for b in bodies]


async def test_accept_stores_a_provisional_running_view(readmodel: ReadModel) -> None:
    debate_id = str(uuid.uuid4())
    view = provisional(debate_id)
    await readmodel.accept(view)

    assert await readmodel.get(debate_id) == view
    assert view["status"] == "running" and view["last_seq"] == 0
    assert await readmodel.count_running() == 1
    assert await readmodel.events(debate_id, 0, 100) == []

    # A second accept (a retried POST) changes nothing.
    await readmodel.accept({**view, "topic": "something else"})
    assert await readmodel.get(debate_id) == view
    assert await readmodel.count_running() == 1
    assert await readmodel.get(str(uuid.uuid4())) is None


async def test_events_applied_in_order_fold_into_the_view(readmodel: ReadModel) -> None:
    events = debate_events()
    debate_id = events[0].debate_id
    await readmodel.accept(provisional(debate_id))

    outcome, view = await readmodel.apply(events[0])
    assert outcome is Applied.APPLIED and view is not None
    assert isinstance(events[0], DebateCreated)
    assert view["consensus_mode"] == "majority"
    assert view["threshold"] == events[0].threshold
    assert view["status"] == "running" and view["completed_at"] is None

    first_phase = next(i for i, e in enumerate(events) if isinstance(e, PhaseStarted))
    await apply_all(readmodel, events[1 : first_phase + 1])
    mid = await readmodel.get(debate_id)
    assert mid is not None
    assert (mid["current_round"], mid["current_phase"]) == (1, "propose")
    assert [(t["agent"], t["status"]) for t in mid["turns"]] == [(a, "pending") for a in AGENTS]

    await apply_all(readmodel, events[first_phase + 1 :])
    final = await readmodel.get(debate_id)
    assert final is not None
    end = events[-1]
    assert isinstance(end, DebateCompleted)
    assert final["last_seq"] == end.seq == len(events)
    assert final["status"] == "consensus"
    assert final["completed_at"] == end.occurred_at.isoformat()
    assert final["current_phase"] == "synthesis"

    completed = [e for e in events if isinstance(e, TurnCompleted)]
    # propose, critique, revise and vote for each agent, then one synthesis
    assert len(final["turns"]) == len(completed) == 4 * len(AGENTS) + 1
    assert all(t["status"] == "completed" for t in final["turns"])
    assert {t["phase"] for t in final["turns"]} == {
        "propose",
        "critique",
        "revise",
        "vote",
        "synthesis",
    }
    assert final["proof"]["positions"] == dict.fromkeys(AGENTS, "AGREE")
    assert final["synthesis"] == "synthesis by demo-1"  # top-rated; ties: first agent
    assert {(r["agent"], r["domain"]) for r in final["ratings"]} >= {("demo-2", "general")}
    turn = final["turns"][0]
    assert turn["content"] == "propose by demo-1"
    assert (turn["latency_ms"], turn["model"]) == (12, "demo-deterministic")

    assert [(v["agent"], v["choice"]) for v in final["votes"]] == [(a, "demo-2") for a in AGENTS]
    assert final["votes"][0]["confidence"] == pytest.approx(0.8)
    consensus = final["consensus"]
    assert consensus["reached"] is True
    assert consensus["winner"] == "demo-2"
    assert consensus["answer"] == "revise by demo-2"
    assert consensus["supporters"] == AGENTS and consensus["dissenters"] == []
    assert consensus["agreement_ratio"] == pytest.approx(1.0)

    assert await readmodel.count_running() == 0
    assert seqs(await readmodel.events(debate_id, 0, 1000)) == list(range(1, len(events) + 1))


async def test_events_without_a_provisional_row_create_the_view(readmodel: ReadModel) -> None:
    # Debates started elsewhere (the CLI, another gateway) arrive with no POST first.
    events = debate_events(topic="Started by the CLI")
    await apply_all(readmodel, events)
    view = await readmodel.get(events[0].debate_id)
    assert view is not None
    assert (view["topic"], view["status"], view["agents"]) == (
        "Started by the CLI",
        "consensus",
        AGENTS,
    )


async def test_a_failed_debate_records_status_error_and_completion(readmodel: ReadModel) -> None:
    events = debate_events(votes={})  # nobody casts a valid vote
    await apply_all(readmodel, events)
    end = events[-1]
    assert isinstance(end, DebateFailed)
    view = await readmodel.get(end.debate_id)
    assert view is not None
    assert view["status"] == "failed"
    assert view["error"] == end.reason and "vote" in view["error"]
    assert view["completed_at"] == end.occurred_at.isoformat()
    assert view["consensus"] is None
    assert await readmodel.count_running() == 0


async def test_reapplying_an_event_is_a_duplicate_and_changes_nothing(
    readmodel: ReadModel,
) -> None:
    events = debate_events()
    debate_id = events[0].debate_id
    await apply_all(readmodel, events[:6])
    before = await readmodel.get(debate_id)

    for event in (events[0], events[3], events[5]):
        assert (await readmodel.apply(event))[0] is Applied.DUPLICATE

    assert await readmodel.get(debate_id) == before
    assert seqs(await readmodel.events(debate_id, 0, 1000)) == [1, 2, 3, 4, 5, 6]
    # The duplicate of a completed turn did not add a second completion.
    assert before is not None
    assert sum(t["status"] == "completed" for t in before["turns"]) == 3


async def test_an_event_beyond_the_next_seq_is_a_gap_and_writes_nothing(
    readmodel: ReadModel,
) -> None:
    events = debate_events()
    debate_id = events[0].debate_id

    # Nothing stored yet: seq 2 cannot be applied before seq 1.
    assert await readmodel.apply(events[1]) == (Applied.GAP, None)
    assert await readmodel.get(debate_id) is None
    assert await readmodel.events(debate_id, 0, 100) == []

    await apply_all(readmodel, events[:2])
    before = await readmodel.get(debate_id)
    assert await readmodel.apply(events[3]) == (Applied.GAP, None)
    assert await readmodel.apply(events[-1]) == (Applied.GAP, None)
    assert await readmodel.get(debate_id) == before
    assert seqs(await readmodel.events(debate_id, 0, 100)) == [1, 2]

    # Once the missing event arrives, the refused one applies.
    await apply_all(readmodel, events[2:4])
    view = await readmodel.get(debate_id)
    assert view is not None and view["last_seq"] == 4


async def test_list_views_filters_by_status_newest_first_up_to_limit(
    readmodel: ReadModel,
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(4)]
    for i, debate_id in enumerate(ids):  # created one minute apart, ids[3] newest
        await readmodel.accept(provisional(debate_id, T0 + timedelta(minutes=i), f"topic {i}"))
    # ids[1] ends in consensus, ids[2] fails; their created_at comes from debate.created.
    await apply_all(readmodel, debate_events(ids[1], now=T0 + timedelta(minutes=1)))
    await apply_all(readmodel, debate_events(ids[2], now=T0 + timedelta(minutes=2), votes={}))

    def listed(views: list[dict[str, Any]]) -> list[str]:
        return [v["id"] for v in views]

    assert listed(await readmodel.list_views(None, 10)) == ids[::-1]
    assert listed(await readmodel.list_views(None, 2)) == [ids[3], ids[2]]
    assert listed(await readmodel.list_views("running", 10)) == [ids[3], ids[0]]
    assert listed(await readmodel.list_views("running", 1)) == [ids[3]]
    assert listed(await readmodel.list_views("consensus", 10)) == [ids[1]]
    assert listed(await readmodel.list_views("failed", 10)) == [ids[2]]
    assert await readmodel.list_views("timeout", 10) == []
    assert await readmodel.count_running() == 2
    views = await readmodel.list_views("consensus", 10)
    assert views[0]["status"] == "consensus" and views[0]["last_seq"] > 0


async def test_events_pages_after_a_seq_with_a_limit(readmodel: ReadModel) -> None:
    events = debate_events()
    other = debate_events()
    debate_id = events[0].debate_id
    await apply_all(readmodel, events)
    await apply_all(readmodel, other[:3])
    n = len(events)

    bodies = await readmodel.events(debate_id, 0, 1000)
    # The stored bodies are the wire JSON: they decode to exactly the events applied.
    assert [codec.decode_debate_event(b.encode()) for b in bodies] == events
    assert seqs(await readmodel.events(debate_id, 5, 3)) == [6, 7, 8]
    assert seqs(await readmodel.events(debate_id, n - 2, 1000)) == [n - 1, n]
    assert await readmodel.events(debate_id, n, 1000) == []
    assert seqs(await readmodel.events(other[0].debate_id, 0, 1000)) == [1, 2, 3]
    assert await readmodel.events(str(uuid.uuid4()), 0, 1000) == []


async def test_count_running_and_ping(readmodel: ReadModel) -> None:
    assert await readmodel.count_running() == 0
    latency = await readmodel.ping()
    assert isinstance(latency, float) and 0 <= latency < 2000

    running = debate_events()
    await apply_all(readmodel, running[:3])
    await readmodel.accept(provisional(str(uuid.uuid4())))
    assert await readmodel.count_running() == 2
    await apply_all(readmodel, running[3:])
    assert await readmodel.count_running() == 1
