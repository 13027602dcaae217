"""How a debate decides: consensus modes, quorum, weights, merging, proof, ratings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aragora.contracts.messages import (
    AgentTurnSucceeded,
    DebateCompleted,
    DebateFailed,
    PhaseStarted,
    RunTurn,
)
from aragora.contracts.values import Critique, RatingChange, Vote
from aragora.orchestrator import ratings as elo
from aragora.orchestrator import tally
from tests.unit.domain_driver import AGENTS, Run, ok, start


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


def test_ratings_move_for_the_winner_and_are_recorded() -> None:
    end = Run(start()).play({"a": "b", "b": "b", "c": "b"})
    assert isinstance(end, DebateCompleted)
    changes = {(r.agent, r.domain): r for r in end.ratings}
    assert changes[("b", "style")].after > 1500 > changes[("a", "style")].after
    assert ("b", elo.OVERALL) in changes
    assert changes[("b", "style")].brier == pytest.approx((0.8 - 1) ** 2)


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
