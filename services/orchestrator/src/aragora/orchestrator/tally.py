"""Counting votes and writing the proof: pure functions over ballots and positions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import msgspec

from aragora.contracts.receipt import proof_checksum
from aragora.contracts.values import (
    Consensus,
    ConsensusMode,
    ConsensusProof,
    Critique,
    Dissent,
    Position,
    Vote,
)

Ballot = tuple[str, Vote | None]  # (voter, vote or None for an abstention)
TENSION_SEVERITY = 7.0


def threshold_for(mode: ConsensusMode, threshold: float) -> float:
    if mode == "unanimous":
        return 1.0
    if mode == "supermajority":
        return max(threshold, 2 / 3)
    if mode == "any":
        return 0.0
    return threshold


def quorum(agent_count: int) -> int:
    """Valid votes needed for any outcome: max(2, ceil(n / 2))."""
    return max(2, math.ceil(agent_count / 2))


def tally(
    *,
    agents: Sequence[str],
    ballots: Sequence[Ballot],
    candidates: Sequence[str],
    threshold: float,
    answers: Mapping[str, str],
    weights: Mapping[str, float] | None = None,
    merged: Mapping[str, str] | None = None,
    method: str = "majority",
) -> Consensus:
    """Count valid votes; the winner's share is of all agents' weight (abstentions count
    against). Choices whose answers were merged as near-identical count together; a tie
    has no winner. Order of ballots does not matter."""
    weight = {a: (weights or {}).get(a, 1.0) for a in agents}
    rep = {c: (merged or {}).get(c, c) for c in candidates}
    valid = [(v, b) for v, b in ballots if b is not None and b.choice in rep]
    totals: dict[str, float] = {}
    for voter, vote in valid:
        choice = rep[vote.choice]
        totals[choice] = totals.get(choice, 0.0) + weight.get(voter, 1.0)
    best = max(totals.values(), default=0.0)
    leaders = sorted(c for c, w in totals.items() if math.isclose(w, best) and best > 0)
    winner = leaders[0] if len(leaders) == 1 else None
    total_weight = sum(weight.values()) or 1.0
    ratio = best / total_weight if winner else 0.0
    supporters = sorted(v for v, b in valid if winner is not None and rep[b.choice] == winner)
    confidence = _weighted_confidence(valid, supporters, weight)
    reached = winner is not None and ratio >= threshold and len(valid) >= quorum(len(agents))
    return Consensus(
        reached=reached,
        agreement_ratio=round(ratio, 4),
        confidence=confidence,
        threshold=threshold,
        winner=winner,
        answer=answers.get(winner) if winner else None,
        supporters=[a for a in agents if a in supporters],
        dissenters=[a for a in agents if a not in supporters],
        method=method,
        valid_votes=len(valid),
        quorum=quorum(len(agents)),
    )


def _weighted_confidence(
    valid: Sequence[tuple[str, Vote]], supporters: Sequence[str], weight: Mapping[str, float]
) -> float:
    chosen = [(weight.get(v, 1.0), b.confidence) for v, b in valid if v in supporters]
    total = sum(w for w, _ in chosen)
    if not total:
        return 0.0
    return round(sum(w * max(0.0, min(1.0, c)) for w, c in chosen) / total, 4)


def positions(
    agents: Sequence[str], ballots: Mapping[str, Vote | None], winner: str | None
) -> dict[str, Position]:
    """AGREE / CONDITIONAL (support with conditions) / DISAGREE / ABSTAIN per agent."""
    result: dict[str, Position] = {}
    for agent in agents:
        vote = ballots.get(agent)
        if vote is None or winner is None:
            result[agent] = "ABSTAIN"
        elif vote.choice == winner:
            result[agent] = "CONDITIONAL" if vote.conditions.strip() else "AGREE"
        else:
            result[agent] = "DISAGREE"
    return result


def build_proof(
    *,
    agents: Sequence[str],
    ballots: Mapping[str, Vote | None],
    consensus: Consensus,
    claim: str | None,
    final_critiques: Mapping[str, Sequence[Critique]],
) -> ConsensusProof:
    """The consensus proof: claim, stances, dissent with reasons, unresolved tensions."""
    stand = positions(agents, ballots, consensus.winner)
    dissent = []
    for agent, position in stand.items():
        if position != "DISAGREE":
            continue
        vote = ballots.get(agent)
        reasons = [vote.reasoning] if vote and vote.reasoning else []
        reasons += [
            issue
            for c in final_critiques.get(agent, ())
            if c.target == consensus.winner
            for issue in c.issues
        ]
        dissent.append(Dissent(agent=agent, choice=vote.choice if vote else None, reasons=reasons))
    tensions = [
        f"{critic} on {c.target}: {issue}"
        for critic, critiques in final_critiques.items()
        for c in critiques
        if c.target == consensus.winner and c.severity >= TENSION_SEVERITY
        for issue in c.issues
    ]
    proof = ConsensusProof(
        claim=claim,
        winner=consensus.winner,
        positions=stand,
        dissent=dissent,
        tensions=tensions,
        agreement_ratio=consensus.agreement_ratio,
        confidence=consensus.confidence,
        method=consensus.method,
        checksum="",
    )
    return msgspec.structs.replace(proof, checksum=proof_checksum(proof))
