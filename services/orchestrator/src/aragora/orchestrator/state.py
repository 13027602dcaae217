"""Debate state folded from its events: ``evolve(state, event) -> state``.

Pure and total over the v1 events, so replaying a stored debate re-derives exactly the
state the live service decided on (including values recorded in events, such as vote
weights and convergence measurements, which are never recomputed on replay).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from aragora.contracts.messages import (
    ConvergenceMeasured,
    DebateCompleted,
    DebateCreated,
    DebateEvent,
    DebateFailed,
    DebateQueued,
    PhaseStarted,
    RoundStarted,
    TurnCompleted,
    TurnFailed,
)
from aragora.contracts.values import Phase, Protocol, TurnSpec


def protocol_of(created: DebateCreated) -> Protocol:
    """The protocol a debate runs by (v1.0 debates stored only rounds/consensus/threshold)."""
    if created.protocol is not None:
        return created.protocol
    return Protocol(rounds=created.rounds, consensus=created.consensus, threshold=created.threshold)


@dataclass(frozen=True)
class Turn:
    spec: TurnSpec
    round: int
    phase: Phase
    outcome: TurnCompleted | TurnFailed | None = None


@dataclass(frozen=True)
class DebateState:
    debate_id: str
    topic: str
    agents: tuple[str, ...]
    protocol: Protocol
    domain: str
    created: DebateCreated
    seq: int
    queued: bool = False
    round: int = 0
    phase: Phase | None = None
    phase_event: PhaseStarted | None = None
    phase_started_at: datetime | None = None
    turns: dict[str, Turn] = field(default_factory=dict)  # the current phase's turns
    latest: dict[str, str] = field(default_factory=dict)  # agent -> latest position
    positions: dict[int, dict[str, str]] = field(default_factory=dict)  # round -> agent -> text
    history: tuple[TurnCompleted, ...] = ()
    failures: tuple[TurnFailed, ...] = ()
    convergence: tuple[ConvergenceMeasured, ...] = ()
    votes_phase: PhaseStarted | None = None
    cost_usd: float = 0.0  # sum of the completed turns' cost_usd (the budget's running total)
    terminal: DebateCompleted | DebateFailed | None = None

    @property
    def is_over(self) -> bool:
        return self.terminal is not None

    @property
    def candidates(self) -> list[str]:
        """Agents holding a position, in the debate's agent order."""
        return [a for a in self.agents if a in self.latest]

    @property
    def over_budget(self) -> bool:
        """The completed turns cost more than the protocol's ``max_cost_usd`` (0: no limit)."""
        limit = self.protocol.max_cost_usd
        return limit > 0 and self.cost_usd > limit

    @property
    def rounds(self) -> int:
        return self.protocol.rounds

    def phase_turns(self, phase: Phase, round_: int | None = None) -> list[TurnCompleted]:
        return [
            t for t in self.history if t.phase == phase and (round_ is None or t.round == round_)
        ]


def evolve(state: DebateState | None, event: DebateEvent) -> DebateState:
    if isinstance(event, DebateCreated):
        return DebateState(
            debate_id=event.debate_id,
            topic=event.topic,
            agents=tuple(event.agents),
            protocol=protocol_of(event),
            domain=event.domain,
            created=event,
            seq=event.seq,
        )
    if state is None:
        raise ValueError(f"{type(event).__name__} before debate.created")
    state = replace(state, seq=event.seq)
    if isinstance(event, DebateQueued):
        return replace(state, queued=True)
    if isinstance(event, RoundStarted):
        return replace(state, round=event.round, queued=False)
    if isinstance(event, PhaseStarted):
        turns = {t.turn_id: Turn(spec=t, round=event.round, phase=event.phase) for t in event.turns}
        votes = event if event.phase == "vote" else state.votes_phase
        return replace(
            state,
            phase=event.phase,
            phase_event=event,
            phase_started_at=event.occurred_at,
            turns=turns,
            votes_phase=votes,
        )
    if isinstance(event, TurnCompleted | TurnFailed):
        turn = state.turns[event.turn_id]
        turns = {**state.turns, event.turn_id: replace(turn, outcome=event)}
        if isinstance(event, TurnFailed):
            return replace(state, turns=turns, failures=(*state.failures, event))
        latest, positions = state.latest, state.positions
        if event.phase in ("propose", "revise"):
            latest = {**latest, event.agent: event.content}
            positions = {
                **positions,
                event.round: {**positions.get(event.round, {}), event.agent: event.content},
            }
        return replace(
            state,
            turns=turns,
            latest=latest,
            positions=positions,
            history=(*state.history, event),
            cost_usd=round(state.cost_usd + event.cost_usd, 6),
        )
    if isinstance(event, ConvergenceMeasured):
        return replace(state, convergence=(*state.convergence, event))
    if isinstance(event, DebateCompleted | DebateFailed):
        return replace(state, terminal=event)
    raise TypeError(f"unknown event {type(event).__name__}")


def replay(events: list[DebateEvent]) -> DebateState | None:
    state: DebateState | None = None
    for event in events:
        state = evolve(state, event)
    return state
