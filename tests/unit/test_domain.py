"""The debate rules as pure functions: phases, topology, deadlines, queueing, replay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aragora.contracts.messages import (
    AgentTurnSucceeded,
    ConvergenceMeasured,
    DebateCompleted,
    DebateCreated,
    DebateFailed,
    DebateQueued,
    PhaseStarted,
    RoundStarted,
    RunTurn,
    TurnFailed,
)
from aragora.orchestrator import domain
from tests.unit.domain_driver import AGENTS, T0, Run, ctx, failed, ok, start


def test_start_records_debate_round_and_first_phase_and_asks_every_agent() -> None:
    decision = domain.decide_start(start(), ctx())
    assert [type(e) for e in decision.events] == [DebateCreated, RoundStarted, PhaseStarted]
    assert [e.seq for e in decision.events] == [1, 2, 3]
    assert [c.agent for c in decision.commands] == AGENTS
    assert {c.phase for c in decision.commands} == {"propose"}
    phase = decision.events[2]
    assert isinstance(phase, PhaseStarted)
    assert [t.turn_id for t in phase.turns] == [c.turn_id for c in decision.commands]
    assert [t.stance for t in phase.turns] == ["affirmative", "negative", "neutral"]
    created = decision.events[0]
    assert isinstance(created, DebateCreated)
    assert created.domain == "style"


def test_phases_per_round_then_vote_then_synthesis() -> None:
    run = Run(start(rounds=2))
    end = run.play({"a": "a", "b": "a", "c": "a"})
    assert run.phases() == [
        (1, "propose"), (1, "critique"), (1, "revise"),
        (2, "propose"), (2, "critique"), (2, "revise"),
        (2, "vote"), (2, "synthesis"),
    ]  # fmt: skip
    assert [e.seq for e in run.events] == list(range(1, len(run.events) + 1))
    assert isinstance(end, DebateCompleted)
    assert end.synthesis == "text by a in synthesis"


def test_the_final_round_may_skip_critique() -> None:
    run = Run(start(rounds=2, skip_final_critique=True))
    run.play({"a": "a", "b": "a", "c": "a"})
    assert (2, "critique") not in run.phases()
    assert (1, "critique") in run.phases()


def test_the_stored_protocol_is_the_one_requested() -> None:
    created = domain.decide_start(start(rounds=6, topology="ring"), ctx()).events[0]
    assert isinstance(created, DebateCreated)
    assert created.rounds == 6
    assert created.protocol is not None
    assert created.protocol.topology == "ring"


@pytest.mark.parametrize(
    ("topology", "expected"),
    [
        ("all-to-all", {"a": ["b", "c"], "b": ["a", "c"], "c": ["a", "b"]}),
        ("ring", {"a": ["b"], "b": ["c"], "c": ["a"]}),
        ("star", {"a": ["b", "c"], "b": ["a"], "c": ["a"]}),
    ],
)
def test_critique_topology_assigns_targets(topology: str, expected: dict[str, list[str]]) -> None:
    run = Run(start(topology=topology))
    for cmd in list(run.pending):
        run.pending.remove(cmd)
        run.feed(ok(cmd))
    critiques = {c.agent: c.targets for c in run.pending if c.phase == "critique"}
    assert critiques == expected
    a = next(c for c in run.pending if c.agent == "a")
    assert [m.agent for m in a.context] == expected["a"]  # peers' text, with authors


def test_round_robin_rotates_whom_each_agent_reviews() -> None:
    from aragora.orchestrator.topology import critique_targets

    first = critique_targets("round-robin", ["a", "b", "c"], 1)
    second = critique_targets("round-robin", ["a", "b", "c"], 2)
    assert first["a"] == ["b"]
    assert second["a"] == ["c"]


@pytest.mark.parametrize(
    ("mode", "votes", "status"),
    [
        ("majority", {"a": "a", "b": "a", "c": "b"}, "consensus"),
        ("supermajority", {"a": "a", "b": "a", "c": "b"}, "consensus"),  # 2/3 >= 2/3
        ("unanimous", {"a": "a", "b": "a", "c": "b"}, "no_consensus"),
        ("unanimous", {"a": "a", "b": "a", "c": "a"}, "consensus"),
        ("any", {"a": "a", "b": "b", "c": "a"}, "consensus"),
    ],
)
def test_consensus_modes(mode: str, votes: dict[str, str | None], status: str) -> None:
    end = Run(start(consensus=mode)).play(votes)
    assert isinstance(end, DebateCompleted)
    assert end.status == status
    assert end.consensus.method == mode


def test_failed_turns_are_recorded_and_the_debate_goes_on_while_quorum_holds() -> None:
    end = Run(start()).play({"b": "b", "c": "b"}, fail={("a", "*")})
    assert isinstance(end, DebateCompleted)
    assert end.status == "consensus"
    # a never took a position, so it was not asked to critique, revise or vote
    assert [(f.agent, f.phase) for f in end.failures] == [("a", "propose")]
    assert end.proof is not None
    assert end.proof.positions["a"] == "ABSTAIN"


def test_losing_quorum_mid_debate_ends_failed_with_the_failures() -> None:
    end = Run(start()).play(fail={("a", "*"), ("b", "*")})
    assert isinstance(end, DebateFailed)
    assert "insufficient_participation" in end.reason
    assert {f.agent for f in end.failures} == {"a", "b"}


def test_duplicate_and_late_results_decide_nothing() -> None:
    run = Run(start())
    first = run.pending[0]
    assert run.feed(ok(first)).events
    assert run.feed(ok(first)) == domain.NOTHING
    assert run.feed(failed(first)) == domain.NOTHING


def test_convergence_ends_debating_early() -> None:
    def stable(cmd: RunTurn) -> AgentTurnSucceeded:
        return ok(cmd, content=f"{cmd.agent} keeps exactly the same position on tabs")

    run = Run(start(rounds=4, early_stop=True))
    end = run.play({"a": "a", "b": "a", "c": "a"}, answer=stable)
    measured = [e for e in run.events if isinstance(e, ConvergenceMeasured)]
    assert len(measured) == 1  # after round 2 revise; rounds 3-4 never happen
    assert measured[0].status == "converged"
    assert measured[0].early_stop
    assert (3, "propose") not in run.phases()
    assert isinstance(end, DebateCompleted)
    assert end.reason.startswith("early stop in round 2")


def test_stop_votes_end_debating_early_even_without_convergence() -> None:
    def diverging(cmd: RunTurn) -> AgentTurnSucceeded:
        text = f"round {cmd.round} idea {cmd.agent} {'x' * cmd.round} {cmd.round * 7}"
        return ok(cmd, content=text, continue_debate=False if cmd.phase == "revise" else None)

    run = Run(start(rounds=4, early_stop=True))
    run.play({"a": "a", "b": "a", "c": "a"}, answer=diverging)
    measured = [e for e in run.events if isinstance(e, ConvergenceMeasured)]
    assert measured[0].stop_share == 1.0
    assert measured[0].reason == "agents voted STOP"
    revise_cmds = [e for e in run.events if isinstance(e, PhaseStarted) and e.phase == "revise"]
    assert len(revise_cmds) == 2


def test_overdue_turns_fail_with_no_result() -> None:
    run = Run(start())
    late = T0 + timedelta(seconds=60 + domain.TURN_GRACE_SECONDS + 1)
    assert domain.decide_deadlines(run.state, ctx(T0)) == domain.NOTHING
    decision = domain.decide_deadlines(run.state, ctx(late))
    failures = [e for e in decision.events if isinstance(e, TurnFailed)]
    assert [f.reason for f in failures] == ["no_result"] * 3
    assert isinstance(decision.events[-1], DebateFailed)


def test_phase_deadline_is_shorter_when_set() -> None:
    run = Run(start(phase_timeout_seconds=10))
    decision = domain.decide_deadlines(run.state, ctx(T0 + timedelta(seconds=11)))
    assert any(isinstance(e, TurnFailed) for e in decision.events)


def test_debate_deadline_ends_in_timeout() -> None:
    run = Run(start(debate_timeout_seconds=600))
    decision = domain.decide_deadlines(run.state, ctx(T0 + timedelta(seconds=601)))
    end = decision.events[0]
    assert isinstance(end, DebateFailed)
    assert end.status == "timeout"


def test_queue_then_dequeue_then_cancel() -> None:
    decision = domain.decide_start(start(), ctx(), queue_position=2)
    assert [type(e) for e in decision.events] == [DebateCreated, DebateQueued]
    assert decision.commands == []
    state = domain.replay(decision.events)
    assert state is not None
    assert state.queued
    started = domain.decide_dequeue(state, ctx())
    assert isinstance(started.events[0], RoundStarted)
    assert len(started.commands) == 3
    for event in started.events:
        state = domain.evolve(state, event)
    cancelled = domain.decide_cancel(state, ctx(), "user asked", "cmd-2")
    end = cancelled.events[0]
    assert isinstance(end, DebateFailed)
    assert (end.status, end.reason) == ("cancelled", "user asked")
    assert domain.decide_cancel(domain.evolve(state, end), ctx(), "again", "c3") == domain.NOTHING


def test_replaying_the_events_rebuilds_the_same_state() -> None:
    run = Run(start(rounds=2))
    run.play({"a": "c", "b": "c", "c": "c"})
    assert domain.replay(run.events) == run.state


@settings(max_examples=25, deadline=None)
@given(votes=st.lists(st.sampled_from(["a", "b", "c"]), min_size=3, max_size=3))
def test_replay_of_any_debate_reproduces_the_stored_outcome(votes: list[str]) -> None:
    run = Run(start())
    end = run.play(dict(zip(AGENTS, votes, strict=True)))
    replayed = domain.replay(run.events)
    assert replayed is not None
    assert replayed.terminal == end
