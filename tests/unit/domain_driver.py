"""Drives a debate through the orchestrator's pure rules, as the service does (tests only)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from aragora.contracts.messages import (
    AgentTurnFailed,
    AgentTurnSucceeded,
    DebateCompleted,
    DebateFailed,
    PhaseStarted,
    RunTurn,
    StartDebate,
)
from aragora.contracts.values import Protocol, Vote
from aragora.orchestrator import domain
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
