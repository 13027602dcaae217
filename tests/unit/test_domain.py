"""The debate rules as pure functions: given events, when a command/result, then events."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aragora.contracts.messages import (
    AgentTurnFailed,
    AgentTurnSucceeded,
    ConvergenceMeasured,
    DebateCompleted,
    DebateCreated,
    DebateFailed,
    DebateQueued,
    PhaseStarted,
    RoundStarted,
    RunTurn,
    StartDebate,
    TurnFailed,
)
from aragora.contracts.values import Critique, Protocol, RatingChange, Vote
from aragora.orchestrator import domain, tally
from aragora.orchestrator import ratings as elo
from aragora.orchestrator.domain import Ctx, DebateState, Decision

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AGENTS = ["a", "b", "c"]
DEBATE = "11111111-1111-1111-1111-111111111111"


def ctx(now: datetime = T0, ratings: elo.Ratings | None = None) -> Ctx:
    counter = itertools.count(1)
    return Ctx(
        now=now,
        ids=lambda: f"00000000-0000-0000-0000-{next(counter):012d}",
        ratings=ratings or elo.Ratings(),
    )


def start(agents: list[str] = AGENTS, **protocol: object) -> StartDebate:
    return StartDebate(
        event_id="cmd-1",
        occurred_at=T0,
        correlation_id="corr-1",
        debate_id=DEBATE,
        topic="Tabs or spaces?",
        agents=agents,
        rounds=1,
        protocol=Protocol(**{"rounds": 1, "early_stop": False, **protocol}),  # type: ignore[arg-type]
        domain="style",
    )


def ok(cmd: RunTurn, content: str | None = None, **fields: object) -> AgentTurnSucceeded:
    return AgentTurnSucceeded(
        event_id=f"r-{cmd.turn_id}",
        occurred_at=T0,
        correlation_id=cmd.correlation_id,
        debate_id=cmd.debate_id,
        turn_id=cmd.turn_id,
        agent=cmd.agent,
        content=content if content is not None else f"text by {cmd.agent} in {cmd.phase}",
        **fields,  # type: ignore[arg-type]
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

    def __init__(self, command: StartDebate, ratings: elo.Ratings | None = None) -> None:
        self.ctx = ctx(ratings=ratings)
        decision = domain.decide_start(command, self.ctx)
        self.events = list(decision.events)
        self.pending = list(decision.commands)
        self.state: DebateState = domain.replay(self.events)  # type: ignore[assignment]

    def feed(self, result: AgentTurnSucceeded | AgentTurnFailed) -> Decision:
        decision = domain.decide_turn_result(self.state, result, self.ctx)
        self._take(decision)
        return decision

    def _take(self, decision: Decision) -> None:
        for event in decision.events:
            self.state = domain.evolve(self.state, event)
        self.events += decision.events
        self.pending += decision.commands

    def play(
        self,
        votes: dict[str, str | None] | None = None,
        *,
        answer: object = None,
        fail: set[tuple[str, str]] = frozenset(),  # type: ignore[assignment]
    ) -> DebateCompleted | DebateFailed:
        """Answer every turn; ``votes`` maps voter -> choice (None: no valid vote)."""
        votes = votes or {}
        while self.pending and not self.state.is_over:
            cmd = self.pending.pop(0)
            if (cmd.agent, cmd.phase) in fail or (cmd.agent, "*") in fail:
                self.feed(failed(cmd))
            elif cmd.phase in ("vote", "judge"):
                choice = votes.get(cmd.agent) if cmd.phase == "vote" else votes.get("judge")
                vote = Vote(choice=choice, confidence=0.8, reasoning="because") if choice else None
                self.feed(ok(cmd, vote=vote))
            elif callable(answer):
                self.feed(answer(cmd))
            else:
                self.feed(ok(cmd))
        end = self.state.terminal
        assert end is not None
        return end

    def phases(self) -> list[tuple[int, str]]:
        return [(e.round, e.phase) for e in self.events if isinstance(e, PhaseStarted)]


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


def test_consensus_names_winner_supporters_dissenters_and_proof() -> None:
    run = Run(start())
    end = run.play({"a": "b", "b": "b", "c": "a"})
    assert isinstance(end, DebateCompleted)
    assert end.status == "consensus"
    c = end.consensus
    assert (c.reached, c.winner) == (True, "b")
    assert c.agreement_ratio == pytest.approx(0.6667, abs=1e-4)
    assert (c.supporters, c.dissenters) == (["a", "b"], ["c"])
    assert (c.valid_votes, c.quorum) == (3, 2)
    proof = end.proof
    assert proof is not None
    assert proof.positions == {"a": "AGREE", "b": "AGREE", "c": "DISAGREE"}
    assert [d.agent for d in proof.dissent] == ["c"]
    assert proof.dissent[0].reasons == ["because"]
    assert proof.checksum == tally.proof_checksum(proof)
    assert proof.claim == "text by b in revise"


def test_split_vote_is_no_consensus() -> None:
    end = Run(start()).play({"a": "a", "b": "b", "c": "c"})
    assert isinstance(end, DebateCompleted)
    assert end.status == "no_consensus"
    assert end.consensus.winner is None  # a tie has no winner


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


def test_supermajority_needs_two_thirds_even_with_a_lower_threshold() -> None:
    agents = ["a", "b", "c", "d", "e"]
    end = Run(start(agents, consensus="supermajority", threshold=0.5)).play(
        {"a": "a", "b": "a", "c": "a", "d": "b", "e": "b"}
    )  # 3/5 = 0.6 < 2/3
    assert isinstance(end, DebateCompleted)
    assert end.status == "no_consensus"


def test_judge_decides_and_reports_its_own_confidence() -> None:
    ratings = elo.Ratings().apply(
        [RatingChange(agent="c", domain="style", before=1500, after=1600)]
    )
    run = Run(start(consensus="judge", judge_selection="elo"), ratings=ratings)
    end = run.play({"a": "a", "b": "b", "c": "b", "judge": "a"})
    judge_phase = next(e for e in run.events if isinstance(e, PhaseStarted) and e.phase == "judge")
    assert [t.agent for t in judge_phase.turns] == ["c"]  # highest rated in the domain
    assert isinstance(end, DebateCompleted)
    assert (end.status, end.consensus.winner, end.consensus.method) == ("consensus", "a", "judge")
    assert end.consensus.confidence == 0.8  # the judge's, not a constant


def test_a_failed_judge_falls_back_to_majority() -> None:
    run = Run(start(consensus="judge", judge_selection="last"))
    end = run.play({"a": "b", "b": "b", "c": "a"}, fail={("c", "judge")})
    assert isinstance(end, DebateCompleted)
    assert (end.consensus.winner, end.consensus.method) == ("b", "judge")
    assert "majority" in end.reason


def test_none_mode_has_no_vote_only_a_synthesis() -> None:
    run = Run(start(consensus="none"))
    end = run.play()
    assert "vote" not in [p for _, p in run.phases()]
    assert isinstance(end, DebateCompleted)
    assert end.status == "no_consensus"
    assert end.synthesis is not None
    assert end.ratings == []


def test_weighted_votes_use_bounded_elo_weights_recorded_in_the_event() -> None:
    ratings = elo.Ratings().apply(
        [RatingChange(agent="c", domain="style", before=1500, after=2500)]
    )
    run = Run(start(weighted=True), ratings=ratings)
    end = run.play({"a": "a", "b": "a", "c": "c"})
    vote_phase = next(e for e in run.events if isinstance(e, PhaseStarted) and e.phase == "vote")
    assert vote_phase.weights == {"a": 1.0, "b": 1.0, "c": 1.6}
    assert isinstance(end, DebateCompleted)
    # a holds 2.0 of 3.6 weight = 0.556 < 0.6
    assert end.status == "no_consensus"


def test_near_identical_answers_merge_as_one_choice() -> None:
    same = "We should adopt spaces everywhere for consistency and tooling support."

    def answer(cmd: RunTurn) -> AgentTurnSucceeded:
        text = same if cmd.agent in ("a", "b") else f"Tabs are better, says {cmd.agent}."
        return ok(cmd, content=text)

    end = Run(start()).play({"a": "a", "b": "b", "c": "c"}, answer=answer)
    assert isinstance(end, DebateCompleted)
    assert end.consensus.winner == "a"  # a and b's identical answers count together
    assert end.status == "consensus"


def test_quorum_missing_votes_fails_with_insufficient_participation() -> None:
    end = Run(start()).play({"a": "a"})
    assert isinstance(end, DebateFailed)
    assert end.reason.startswith("insufficient_participation")


def test_no_valid_vote_at_all_fails_instead_of_claiming_agreement() -> None:
    end = Run(start()).play({})
    assert isinstance(end, DebateFailed)
    assert "insufficient_participation" in end.reason


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


def test_ratings_move_for_the_winner_and_are_recorded() -> None:
    end = Run(start()).play({"a": "b", "b": "b", "c": "b"})
    assert isinstance(end, DebateCompleted)
    changes = {(r.agent, r.domain): r for r in end.ratings}
    assert changes[("b", "style")].after > 1500 > changes[("a", "style")].after
    assert ("b", elo.OVERALL) in changes
    assert changes[("b", "style")].brier == pytest.approx((0.8 - 1) ** 2)


def test_replaying_the_events_rebuilds_the_same_state() -> None:
    run = Run(start(rounds=2))
    run.play({"a": "c", "b": "c", "c": "c"})
    assert domain.replay(run.events) == run.state


@settings(max_examples=60, deadline=None)
@given(
    choices=st.lists(st.sampled_from(["a", "b", "c", None]), min_size=3, max_size=3),
    order=st.permutations([0, 1, 2]),
)
def test_outcome_does_not_depend_on_the_order_votes_arrive(
    choices: list[str | None], order: list[int]
) -> None:
    ballots = [
        (voter, Vote(choice=c, confidence=0.7) if c else None)
        for voter, c in zip(AGENTS, choices, strict=True)
    ]
    answers = {a: f"distinct answer number {i} about {a}" for i, a in enumerate(AGENTS)}
    kwargs = {"agents": AGENTS, "candidates": AGENTS, "threshold": 0.6, "answers": answers}
    forward = tally.tally(ballots=ballots, **kwargs)  # type: ignore[arg-type]
    shuffled = tally.tally(ballots=[ballots[i] for i in order], **kwargs)  # type: ignore[arg-type]
    assert forward == shuffled


@settings(max_examples=25, deadline=None)
@given(votes=st.lists(st.sampled_from(["a", "b", "c"]), min_size=3, max_size=3))
def test_replay_of_any_debate_reproduces_the_stored_outcome(votes: list[str]) -> None:
    run = Run(start())
    end = run.play(dict(zip(AGENTS, votes, strict=True)))
    replayed = domain.replay(run.events)
    assert replayed is not None
    assert replayed.terminal == end


def test_severe_critiques_of_the_winner_are_unresolved_tensions() -> None:
    def answer(cmd: RunTurn) -> AgentTurnSucceeded:
        if cmd.phase == "critique":
            crits = [
                Critique(target=t, issues=[f"{t} ignores migration cost"], severity=8)
                for t in cmd.targets
            ]
            return ok(cmd, critiques=crits)
        return ok(cmd)

    end = Run(start()).play({"a": "b", "b": "b", "c": "c"}, answer=answer)
    assert isinstance(end, DebateCompleted)
    assert end.proof is not None
    assert "a on b: b ignores migration cost" in end.proof.tensions
    assert "b ignores migration cost" in end.proof.dissent[0].reasons
