"""What an agent sees for its turn: peers' text as quoted data with its author (pure)."""

from __future__ import annotations

from aragora.contracts.values import PeerMessage, Phase
from aragora.orchestrator.state import DebateState


def context_for(
    s: DebateState, agent: str, phase: Phase, targets: list[str] | None = None
) -> list[PeerMessage]:
    this_round = [t for t in s.history if t.round == s.round]
    if phase == "propose":
        # Later rounds start from everyone's positions at the end of the previous round.
        previous = s.positions.get(s.round - 1, {})
        return [
            PeerMessage(agent=a, round=s.round - 1, phase="revise", content=previous[a])
            for a in s.agents
            if a in previous
        ]
    if phase == "critique":
        wanted = set(targets or [])
        return [
            PeerMessage(agent=t.agent, round=t.round, phase=t.phase, content=t.content)
            for t in this_round
            if t.phase == "propose" and t.agent != agent and t.agent in wanted
        ]
    if phase == "revise":
        own = [t for t in this_round if t.phase == "propose" and t.agent == agent]
        critiques = [
            t
            for t in this_round
            if t.phase == "critique"
            and t.agent != agent
            and (not t.critiques or any(c.target == agent for c in t.critiques))
        ]
        return [
            PeerMessage(agent=t.agent, round=t.round, phase=t.phase, content=t.content)
            for t in (*own, *critiques)
        ]
    if phase == "synthesis":
        votes = [
            PeerMessage(agent=t.agent, round=t.round, phase=t.phase, content=t.content)
            for t in s.history
            if t.phase in ("vote", "judge")
        ]
        return _positions(s) + votes
    return _positions(s)  # vote, judge: everyone's final answer


def _positions(s: DebateState) -> list[PeerMessage]:
    return [
        PeerMessage(agent=a, round=s.round, phase="revise", content=s.latest[a])
        for a in s.agents
        if a in s.latest
    ]
