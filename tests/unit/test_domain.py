"""The debate rules as pure functions: given events, when a command/result, then events."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from aragora.contracts.messages import (
    AgentTurnFailed,
    AgentTurnSucceeded,
    DebateCompleted,
    DebateCreated,
    DebateFailed,
    PhaseStarted,
    RoundStarted,
    RunTurn,
    StartDebate,
    TurnFailed,
    Vote,
)
from aragora.orchestrator import domain
from aragora.orchestrator.domain import DebateState, Decision

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AGENTS = ["a", "b", "c"]


def ids() -> domain.IdFactory:
    counter = itertools.count(1)
    return lambda: f"00000000-0000-0000-0000-{next(counter):012d}"


def start(rounds: int = 1, agents: list[str] = AGENTS, mode: str = "majority") -> StartDebate:
    return StartDebate(
        event_id="cmd-1",
        occurred_at=T0,
        correlation_id="corr-1",
        debate_id="11111111-1111-1111-1111-111111111111",
        topic="Tabs or spaces?",
        agents=agents,
        rounds=rounds,
        consensus=mode,  # type: ignore[arg-type]
        threshold=0.6,
    )


def ok(cmd: RunTurn, content: str = "text", vote: Vote | None = None) -> AgentTurnSucceeded:
    return AgentTurnSucceeded(
        event_id=f"r-{cmd.turn_id}",
        occurred_at=T0,
        correlation_id=cmd.correlation_id,
        debate_id=cmd.debate_id,
        turn_id=cmd.turn_id,
        agent=cmd.agent,
        content=f"{content} by {cmd.agent} in {cmd.phase}",
        vote=vote,
    )


def failed(cmd: RunTurn) -> AgentTurnFailed:
    return AgentTurnFailed(
        event_id=f"f-{cmd.turn_id}",
        occurred_at=T0,
        correlation_id=cmd.correlation_id,
        debate_id=cmd.debate_id,
        turn_id=cmd.turn_id,
        agent=cmd.agent,
        reason="provider_error",
        detail="boom",
    )


class Run:
    """Drives a debate through the pure rules, like the service does."""

    def __init__(self, command: StartDebate) -> None:
        self.ids = ids()
        decision = domain.decide_start(command, T0, self.ids, 30.0)
        self.events = list(decision.events)
        self.pending = list(decision.commands)
        self.state: DebateState = domain.replay(self.events)  # type: ignore[assignment]

    def feed(self, result: AgentTurnSucceeded | AgentTurnFailed) -> Decision:
        decision = domain.decide_turn_result(self.state, result, T0, self.ids, 30.0)
        self._take(decision)
        return decision

    def _take(self, decision: Decision) -> None:
        for event in decision.events:
            self.state = domain.evolve(self.state, event)
        self.events += decision.events
        self.pending += decision.commands

    def answer_all(self, vote_for: dict[str, str | None]) -> None:
        while self.pending and not self.state.is_over:
            cmd = self.pending.pop(0)
            if cmd.phase == "vote":
                choice = vote_for.get(cmd.agent)
                self.feed(ok(cmd, vote=Vote(choice=choice, confidence=0.8) if choice else None))
            else:
                self.feed(ok(cmd))


def test_start_records_debate_round_and_first_phase_and_asks_every_agent() -> None:
    decision = domain.decide_start(start(), T0, ids(), 30.0)
    assert [type(e) for e in decision.events] == [DebateCreated, RoundStarted, PhaseStarted]
    assert [e.seq for e in decision.events] == [1, 2, 3]
    assert [c.agent for c in decision.commands] == AGENTS
    assert {c.phase for c in decision.commands} == {"propose"}
    assert all(c.timeout_seconds == 30.0 for c in decision.commands)
    phase = decision.events[2]
    assert isinstance(phase, PhaseStarted)
    assert [t.turn_id for t in phase.turns] == [c.turn_id for c in decision.commands]
    assert [t.stance for t in phase.turns] == ["affirmative", "negative", "neutral"]


def test_phases_follow_propose_critique_revise_per_round_then_vote() -> None:
    run = Run(start(rounds=2))
    run.answer_all({"a": "a", "b": "a", "c": "a"})
    phases = [(e.round, e.phase) for e in run.events if isinstance(e, PhaseStarted)]
    assert phases == [
        (1, "propose"), (1, "critique"), (1, "revise"),
        (2, "propose"), (2, "critique"), (2, "revise"),
        (2, "vote"),
    ]  # fmt: skip
    assert [e.seq for e in run.events] == list(range(1, len(run.events) + 1))
    terminal = [e for e in run.events if isinstance(e, DebateCompleted | DebateFailed)]
    assert len(terminal) == 1


def test_consensus_names_winner_supporters_and_dissenters() -> None:
    run = Run(start())
    run.answer_all({"a": "b", "b": "b", "c": "a"})
    end = run.events[-1]
    assert isinstance(end, DebateCompleted)
    assert end.status == "consensus"
    c = end.consensus
    assert (c.reached, c.winner, c.agreement_ratio) == (True, "b", pytest.approx(0.6667, abs=1e-4))
    assert c.supporters == ["a", "b"]
    assert c.dissenters == ["c"]
    assert c.answer == "text by b in revise"
    assert c.confidence == pytest.approx(0.8)


def test_split_vote_is_no_consensus() -> None:
    run = Run(start())
    run.answer_all({"a": "a", "b": "b", "c": "c"})
    end = run.events[-1]
    assert isinstance(end, DebateCompleted)
    assert end.status == "no_consensus"
    assert end.consensus.reached is False
    assert end.consensus.agreement_ratio == pytest.approx(0.3333, abs=1e-4)


def test_unanimous_mode_needs_every_agent() -> None:
    run = Run(start(mode="unanimous"))
    run.answer_all({"a": "a", "b": "a", "c": "b"})
    end = run.events[-1]
    assert isinstance(end, DebateCompleted)
    assert end.status == "no_consensus"
    assert end.consensus.threshold == 1.0


def test_abstentions_count_against_the_winner() -> None:
    run = Run(start())
    run.answer_all({"a": "a", "b": None, "c": None})  # unparsable votes
    end = run.events[-1]
    assert isinstance(end, DebateCompleted)
    assert end.status == "no_consensus"
    assert end.consensus.dissenters == ["b", "c"]


def test_no_valid_vote_at_all_fails_instead_of_claiming_agreement() -> None:
    run = Run(start())
    run.answer_all({})
    end = run.events[-1]
    assert isinstance(end, DebateFailed)
    assert end.status == "failed"
    assert "vote" in end.reason


def test_duplicate_and_late_results_decide_nothing() -> None:
    run = Run(start())
    first = run.pending[0]
    assert run.feed(ok(first)).events
    assert run.feed(ok(first)) == domain.NOTHING  # redelivered result
    assert run.feed(failed(first)) == domain.NOTHING  # a late failure for a settled turn
    unknown = ok(first).__class__(**{**_fields(ok(first)), "turn_id": "nope"})
    assert run.feed(unknown) == domain.NOTHING


def _fields(event: AgentTurnSucceeded) -> dict[str, object]:
    return {f: getattr(event, f) for f in event.__struct_fields__}


def test_every_agent_failing_to_propose_fails_the_debate() -> None:
    run = Run(start())
    for cmd in list(run.pending):
        run.feed(failed(cmd))
    end = run.events[-1]
    assert isinstance(end, DebateFailed)
    assert end.reason == "every agent failed to propose"


def test_failed_turns_are_recorded_and_the_debate_goes_on_without_that_agent() -> None:
    run = Run(start())
    while run.pending and not run.state.is_over:
        cmd = run.pending.pop(0)
        if cmd.agent == "a" and cmd.phase != "vote":
            run.feed(failed(cmd))
        elif cmd.phase == "vote":
            run.feed(ok(cmd, vote=Vote(choice="b", confidence=0.9)))
        else:
            run.feed(ok(cmd))
    assert sum(isinstance(e, TurnFailed) and e.agent == "a" for e in run.events) == 3
    assert isinstance(run.events[-1], DebateCompleted)
    # a never took a position, so it is neither a candidate nor a voter
    vote_phase = [e for e in run.events if isinstance(e, PhaseStarted) and e.phase == "vote"]
    assert [t.agent for t in vote_phase[0].turns] == ["b", "c"]
    assert run.events[-1].consensus.dissenters == ["a"]


def test_critique_context_holds_peers_text_with_authors_not_own() -> None:
    run = Run(start())
    for cmd in list(run.pending):
        run.pending.remove(cmd)
        run.feed(ok(cmd))
    critiques = [c for c in run.pending if c.phase == "critique"]
    for_a = next(c for c in critiques if c.agent == "a")
    assert [(m.agent, m.phase) for m in for_a.context] == [("b", "propose"), ("c", "propose")]
    assert for_a.context[0].content == "text by b in propose"


def test_overdue_turns_fail_with_no_result_and_the_debate_moves_on() -> None:
    run = Run(start())
    late = T0 + timedelta(seconds=30 + domain.TURN_GRACE_SECONDS + 1)
    assert domain.decide_deadlines(run.state, T0, run.ids, 30.0, 600.0) == domain.NOTHING
    decision = domain.decide_deadlines(run.state, late, run.ids, 30.0, 600.0)
    failures = [e for e in decision.events if isinstance(e, TurnFailed)]
    assert [f.reason for f in failures] == ["no_result"] * 3
    assert isinstance(decision.events[-1], DebateFailed)  # nobody proposed anything


def test_debate_deadline_ends_in_timeout() -> None:
    run = Run(start())
    decision = domain.decide_deadlines(run.state, T0 + timedelta(seconds=601), run.ids, 30.0, 600.0)
    assert len(decision.events) == 1
    end = decision.events[0]
    assert isinstance(end, DebateFailed)
    assert end.status == "timeout"


def test_nothing_is_decided_after_the_end() -> None:
    run = Run(start())
    run.answer_all({"a": "a", "b": "a", "c": "a"})
    assert run.state.is_over
    later = T0 + timedelta(days=1)
    assert domain.decide_deadlines(run.state, later, run.ids, 30.0, 600.0) == domain.NOTHING


def test_replaying_the_events_rebuilds_the_same_state() -> None:
    run = Run(start(rounds=2))
    run.answer_all({"a": "c", "b": "c", "c": "c"})
    assert domain.replay(run.events) == run.state


@pytest.mark.parametrize(
    ("mode", "expected"), [("majority", 0.6), ("supermajority", 2 / 3), ("unanimous", 1.0)]
)
def test_thresholds_by_mode(mode: str, expected: float) -> None:
    decision = domain.decide_start(start(mode=mode), T0, ids(), 30.0)
    created = decision.events[0]
    assert isinstance(created, DebateCreated)
    assert created.threshold == pytest.approx(expected)


def test_tally_tie_is_never_consensus() -> None:
    c = domain.tally(
        agents=["a", "b", "c", "d"],
        ballots=[
            ("a", Vote(choice="a", confidence=1)),
            ("b", Vote(choice="b", confidence=1)),
            ("c", Vote(choice="a", confidence=1)),
            ("d", Vote(choice="b", confidence=1)),
        ],
        candidates=["a", "b"],
        threshold=0.5,
        answers={"a": "A", "b": "B"},
    )
    assert c.reached is False
    assert c.winner is None
    assert c.dissenters == ["a", "b", "c", "d"]


def test_votes_for_non_candidates_are_ignored() -> None:
    c = domain.tally(
        agents=["a", "b"],
        ballots=[("a", Vote(choice="zed", confidence=1)), ("b", Vote(choice="a", confidence=1))],
        candidates=["a", "b"],
        threshold=0.6,
        answers={"a": "A", "b": "B"},
    )
    assert (c.winner, c.reached, c.supporters) == ("a", False, ["b"])
