"""How a debate ends: the tally or the judge, the proof, ratings, and failure endings."""

from __future__ import annotations

import msgspec

from aragora.contracts.messages import DebateCompleted, DebateFailed
from aragora.contracts.values import AgentFailure, Consensus, Vote
from aragora.orchestrator import ratings as elo
from aragora.orchestrator import similarity, tally
from aragora.orchestrator.builder import Builder
from aragora.orchestrator.state import DebateState


def _ballots(s: DebateState) -> dict[str, Vote | None]:
    votes = s.phase_turns("vote")
    return {a: next((t.vote for t in votes if t.agent == a), None) for a in s.agents}


def _failures(s: DebateState) -> list[AgentFailure]:
    return [
        AgentFailure(
            agent=f.agent, turn_id=f.turn_id, round=f.round, phase=f.phase, reason=f.reason
        )
        for f in s.failures
    ]


def end_failed(b: Builder, reason: str, status: str = "failed") -> None:
    b.emit(
        DebateFailed(
            **b.env(),  # type: ignore[arg-type]
            status=status,  # type: ignore[arg-type]
            reason=reason,
            failures=_failures(b.s),
        )
    )


def conclude(b: Builder) -> None:
    s = b.s
    p = s.protocol
    synthesis_turns = s.phase_turns("synthesis")
    synthesis = synthesis_turns[-1].content if synthesis_turns else None
    ballots = _ballots(s)
    candidates = s.candidates
    threshold = tally.threshold_for(p.consensus, p.threshold)
    weights = s.votes_phase.weights if s.votes_phase else {}
    reason = "vote"
    if p.consensus == "none":
        consensus = Consensus(
            reached=False, agreement_ratio=0.0, confidence=0.0, threshold=threshold,
            winner=None, answer=synthesis, supporters=[], dissenters=list(s.agents),
            method="none", valid_votes=0, quorum=0,
        )  # fmt: skip
        reason = "no vote by protocol (consensus: none); synthesis only"
    else:
        valid = [v for v in ballots.values() if v is not None and v.choice in candidates]
        need = tally.quorum(len(s.agents))
        if len(valid) < need:
            end_failed(
                b,
                f"insufficient_participation: {len(valid)} valid votes of "
                f"{len(s.agents)} agents, quorum is {need}",
            )
            return
        merged = similarity.merge_choices(candidates, s.latest, method=b.ctx.similarity_method)
        consensus = tally.tally(
            agents=s.agents, ballots=list(ballots.items()), candidates=candidates,
            threshold=threshold, answers=s.latest, weights=weights, merged=merged,
            method=p.consensus,
        )  # fmt: skip
        if p.consensus == "judge":
            consensus, reason = _judge_ruling(s, consensus)
    critiques = {t.agent: t.critiques for t in s.phase_turns("critique", _last_critique_round(s))}
    proof = tally.build_proof(
        agents=s.agents,
        ballots=ballots,
        consensus=consensus,
        claim=consensus.answer if consensus.winner else synthesis,
        final_critiques=critiques,
    )
    winner = consensus.winner if consensus.reached else None
    briers = {
        voter: elo.brier(v.confidence, v.choice == winner)
        for voter, v in ballots.items()
        if v is not None and winner is not None
    }
    b.emit(
        DebateCompleted(
            **b.env(),  # type: ignore[arg-type]
            status="consensus" if consensus.reached else "no_consensus",
            consensus=consensus,
            proof=proof,
            synthesis=synthesis,
            ratings=elo.debate_changes(b.ctx.ratings, list(s.agents), winner, s.domain, briers),
            failures=_failures(s),
            reason=_early_reason(s) or reason,
        )
    )


def _judge_ruling(s: DebateState, majority: Consensus) -> tuple[Consensus, str]:
    """The judge's choice decides; if the judge failed or chose nothing valid, majority."""
    rulings = s.phase_turns("judge")
    vote = rulings[-1].vote if rulings else None
    if vote is None or vote.choice not in s.latest:
        return majority, "judge failed; majority vote decided"
    supporters = [a for a, v in _ballots(s).items() if v is not None and v.choice == vote.choice]
    return (
        msgspec.structs.replace(
            majority,
            reached=True,
            winner=vote.choice,
            answer=s.latest[vote.choice],
            confidence=round(max(0.0, min(1.0, vote.confidence)), 4),
            agreement_ratio=round(len(supporters) / len(s.agents), 4),
            supporters=supporters,
            dissenters=[a for a in s.agents if a not in supporters],
            method="judge",
        ),
        f"judge {rulings[-1].agent} ruled",
    )


def _last_critique_round(s: DebateState) -> int | None:
    rounds = [t.round for t in s.phase_turns("critique")]
    return max(rounds) if rounds else None


def _early_reason(s: DebateState) -> str:
    stops = [c for c in s.convergence if c.early_stop]
    return f"early stop in round {stops[-1].round}: {stops[-1].reason}" if stops else ""
