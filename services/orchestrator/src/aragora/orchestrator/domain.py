"""The debate as pure functions: ``evolve(state, event) -> state`` and ``decide_*``.

No I/O, no clock, no randomness: time and ids are passed in, so replaying the stored
events re-derives the same state, and the rules are tested without a bus or a database.

Protocol (v1): ``rounds`` rounds of propose -> critique -> revise, agents in parallel in
each phase; then one vote; consensus when the winner's share of all agents reaches the
mode's threshold. Every debate ends in exactly one terminal event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from aragora.contracts.messages import (
    AgentTurnFailed,
    AgentTurnSucceeded,
    Consensus,
    DebateCompleted,
    DebateCreated,
    DebateEvent,
    DebateFailed,
    PeerMessage,
    Phase,
    PhaseStarted,
    RoundStarted,
    RunTurn,
    Stance,
    StartDebate,
    TurnCompleted,
    TurnFailed,
    TurnSpec,
    Vote,
)

STANCES: tuple[Stance, ...] = ("affirmative", "negative", "neutral")
PHASES: tuple[Phase, ...] = ("propose", "critique", "revise")
TURN_GRACE_SECONDS = 5.0  # the runner reports its own timeouts; this is the backstop
IdFactory = Callable[[], str]


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
    rounds: int
    created: DebateCreated
    seq: int
    round: int = 0
    phase: Phase | None = None
    phase_started_at: datetime | None = None
    turns: dict[str, Turn] = field(default_factory=dict)  # current phase's turns
    latest: dict[str, str] = field(default_factory=dict)  # agent -> latest position
    history: tuple[TurnCompleted, ...] = ()
    terminal: DebateCompleted | DebateFailed | None = None

    @property
    def is_over(self) -> bool:
        return self.terminal is not None


@dataclass(frozen=True)
class Decision:
    events: list[DebateEvent]
    commands: list[RunTurn]


NOTHING = Decision(events=[], commands=[])


def stance_of(index: int, round_: int) -> Stance:
    # Rotates by agent index and round, as the reference system does.
    return STANCES[(index + round_ - 1) % len(STANCES)]


# --- evolve ----------------------------------------------------------------------------------


def evolve(state: DebateState | None, event: DebateEvent) -> DebateState:
    if isinstance(event, DebateCreated):
        return DebateState(
            debate_id=event.debate_id,
            topic=event.topic,
            agents=tuple(event.agents),
            rounds=event.rounds,
            created=event,
            seq=event.seq,
        )
    if state is None:
        raise ValueError(f"{type(event).__name__} before debate.created")
    state = replace(state, seq=event.seq)
    if isinstance(event, RoundStarted):
        return replace(state, round=event.round)
    if isinstance(event, PhaseStarted):
        turns = {t.turn_id: Turn(spec=t, round=event.round, phase=event.phase) for t in event.turns}
        return replace(state, phase=event.phase, phase_started_at=event.occurred_at, turns=turns)
    if isinstance(event, TurnCompleted | TurnFailed):
        turn = state.turns[event.turn_id]
        turns = {**state.turns, event.turn_id: replace(turn, outcome=event)}
        if isinstance(event, TurnCompleted):
            latest = state.latest
            if event.phase in ("propose", "revise"):
                latest = {**latest, event.agent: event.content}
            return replace(state, turns=turns, latest=latest, history=(*state.history, event))
        return replace(state, turns=turns)
    if isinstance(event, DebateCompleted | DebateFailed):
        return replace(state, terminal=event)
    raise TypeError(f"unknown event {type(event).__name__}")


def replay(events: list[DebateEvent]) -> DebateState | None:
    state: DebateState | None = None
    for event in events:
        state = evolve(state, event)
    return state


# --- decide ----------------------------------------------------------------------------------


class _Builder:
    """Accumulates events with contiguous seq and the commands they imply."""

    def __init__(
        self, state: DebateState | None, now: datetime, ids: IdFactory, cause: str
    ) -> None:
        self.state = state
        self.now = now
        self.ids = ids
        self.cause = cause
        self.decision = Decision(events=[], commands=[])

    def envelope(self) -> dict[str, object]:
        assert self.state is not None
        return {
            "event_id": self.ids(),
            "occurred_at": self.now,
            "correlation_id": self.state.created.correlation_id,
            "causation_id": self.cause,
            "debate_id": self.state.debate_id,
            "seq": self.state.seq + 1,
        }

    def emit(self, event: DebateEvent) -> None:
        self.state = evolve(self.state, event)
        self.decision.events.append(event)


def decide_start(
    command: StartDebate, now: datetime, ids: IdFactory, timeout_seconds: float
) -> Decision:
    created = DebateCreated(
        event_id=ids(),
        occurred_at=now,
        correlation_id=command.correlation_id,
        causation_id=command.event_id,
        debate_id=command.debate_id,
        seq=1,
        topic=command.topic,
        agents=list(command.agents),
        rounds=command.rounds,
        consensus=command.consensus,
        threshold=_threshold(command.consensus, command.threshold),
    )
    b = _Builder(None, now, ids, command.event_id)
    b.emit(created)
    _start_round(b, 1, timeout_seconds)
    return b.decision


def _threshold(mode: str, threshold: float) -> float:
    if mode == "unanimous":
        return 1.0
    if mode == "supermajority":
        return max(threshold, 2 / 3)
    return threshold


def _start_round(b: _Builder, round_: int, timeout_seconds: float) -> None:
    b.emit(RoundStarted(**b.envelope(), round=round_))  # type: ignore[arg-type]
    _start_phase(b, "propose", timeout_seconds)


def _start_phase(b: _Builder, phase: Phase, timeout_seconds: float) -> None:
    s = b.state
    assert s is not None
    agents = list(s.agents)
    if phase == "vote":
        agents = [a for a in s.agents if a in s.latest]
    specs = [
        TurnSpec(turn_id=b.ids(), agent=a, stance=stance_of(s.agents.index(a), s.round))
        for a in agents
    ]
    b.emit(PhaseStarted(**b.envelope(), round=s.round, phase=phase, turns=specs))  # type: ignore[arg-type]
    for spec in specs:
        b.decision.commands.append(_run_turn(b, spec, phase, timeout_seconds))


def _run_turn(b: _Builder, spec: TurnSpec, phase: Phase, timeout_seconds: float) -> RunTurn:
    s = b.state
    assert s is not None
    return RunTurn(
        event_id=spec.turn_id,
        occurred_at=b.now,
        correlation_id=s.created.correlation_id,
        causation_id=b.decision.events[-1].event_id,
        turn_id=spec.turn_id,
        debate_id=s.debate_id,
        round=s.round,
        phase=phase,
        agent=spec.agent,
        stance=spec.stance,
        topic=s.topic,
        context=context_for(s, spec.agent, phase),
        candidates=sorted(s.latest, key=s.agents.index) if phase == "vote" else [],
        timeout_seconds=timeout_seconds,
    )


def context_for(s: DebateState, agent: str, phase: Phase) -> list[PeerMessage]:
    """What an agent sees: peers' text as data, never mixed into its instructions."""
    this_round = [t for t in s.history if t.round == s.round]
    if phase == "propose":
        # Later rounds start from everyone's positions at the end of the previous round.
        return [
            PeerMessage(agent=a, round=s.round - 1, phase="revise", content=s.latest[a])
            for a in s.agents
            if a in s.latest and s.round > 1
        ]
    if phase == "critique":
        return [
            PeerMessage(agent=t.agent, round=t.round, phase=t.phase, content=t.content)
            for t in this_round
            if t.phase == "propose" and t.agent != agent
        ]
    if phase == "revise":
        own = [t for t in this_round if t.phase == "propose" and t.agent == agent]
        critiques = [t for t in this_round if t.phase == "critique" and t.agent != agent]
        return [
            PeerMessage(agent=t.agent, round=t.round, phase=t.phase, content=t.content)
            for t in (*own, *critiques)
        ]
    return [
        PeerMessage(agent=a, round=s.round, phase="revise", content=s.latest[a])
        for a in s.agents
        if a in s.latest
    ]


def decide_turn_result(
    state: DebateState,
    result: AgentTurnSucceeded | AgentTurnFailed,
    now: datetime,
    ids: IdFactory,
    timeout_seconds: float,
) -> Decision:
    """Record an agent-runner's result; advance when the phase is complete.

    Idempotent: a result for a turn that is unknown, already resolved, or of a finished
    debate decides nothing (redeliveries and late results are harmless).
    """
    turn = state.turns.get(result.turn_id)
    if state.is_over or turn is None or turn.outcome is not None:
        return NOTHING
    b = _Builder(state, now, ids, result.event_id)
    env = b.envelope()
    common = {"turn_id": turn.spec.turn_id, "round": turn.round, "phase": turn.phase}
    if isinstance(result, AgentTurnSucceeded):
        b.emit(
            TurnCompleted(
                **env,  # type: ignore[arg-type]
                **common,  # type: ignore[arg-type]
                agent=turn.spec.agent,
                content=result.content,
                vote=result.vote if turn.phase == "vote" else None,
                latency_ms=result.latency_ms,
                model=result.model,
            )
        )
    else:
        b.emit(
            TurnFailed(
                **env,  # type: ignore[arg-type]
                **common,  # type: ignore[arg-type]
                agent=turn.spec.agent,
                reason=result.reason,
                detail=result.detail,
            )
        )
    _advance_if_phase_done(b, timeout_seconds)
    return b.decision


def decide_deadlines(
    state: DebateState,
    now: datetime,
    ids: IdFactory,
    timeout_seconds: float,
    debate_timeout_seconds: float,
) -> Decision:
    """Fail overdue turns (no runner answered) and time out an overdue debate."""
    if state.is_over:
        return NOTHING
    b = _Builder(state, now, ids, state.created.event_id)
    if now - state.created.occurred_at > timedelta(seconds=debate_timeout_seconds):
        b.emit(
            DebateFailed(
                **b.envelope(),  # type: ignore[arg-type]
                status="timeout",
                reason=f"debate exceeded {debate_timeout_seconds:g}s",
            )
        )
        return b.decision
    started = state.phase_started_at
    if started is None or now - started <= timedelta(seconds=timeout_seconds + TURN_GRACE_SECONDS):
        return NOTHING
    for turn in state.turns.values():
        if turn.outcome is None:
            b.emit(
                TurnFailed(
                    **b.envelope(),  # type: ignore[arg-type]
                    turn_id=turn.spec.turn_id,
                    round=turn.round,
                    phase=turn.phase,
                    agent=turn.spec.agent,
                    reason="no_result",
                    detail=f"no agent-runner answered within {timeout_seconds:g}s",
                )
            )
    _advance_if_phase_done(b, timeout_seconds)
    return b.decision


def _advance_if_phase_done(b: _Builder, timeout_seconds: float) -> None:
    s = b.state
    assert s is not None and s.phase is not None
    if any(t.outcome is None for t in s.turns.values()):
        return
    if s.phase == "vote":
        _conclude(b)
        return
    succeeded = [t for t in s.turns.values() if isinstance(t.outcome, TurnCompleted)]
    if not succeeded and s.phase == "propose" and not s.latest:
        _fail(b, "every agent failed to propose")
        return
    if len(s.latest) == 0:
        _fail(b, f"no agent produced a position in {s.phase}")
        return
    if s.phase == "propose":
        _start_phase(b, "critique", timeout_seconds)
    elif s.phase == "critique":
        _start_phase(b, "revise", timeout_seconds)
    elif s.round < s.rounds:
        _start_round(b, s.round + 1, timeout_seconds)
    else:
        _start_phase(b, "vote", timeout_seconds)


def _fail(b: _Builder, reason: str) -> None:
    b.emit(DebateFailed(**b.envelope(), status="failed", reason=reason))  # type: ignore[arg-type]


def _conclude(b: _Builder) -> None:
    s = b.state
    assert s is not None
    ballots = [
        (t.spec.agent, t.outcome.vote)
        for t in s.turns.values()
        if isinstance(t.outcome, TurnCompleted)
    ]
    if not any(vote is not None for _, vote in ballots):
        # Never report agreement nobody expressed (the reference system once did).
        _fail(b, "no agent cast a valid vote")
        return
    consensus = tally(
        agents=list(s.agents),
        ballots=ballots,
        candidates=[a for a in s.agents if a in s.latest],
        threshold=s.created.threshold,
        answers=s.latest,
    )
    status = "consensus" if consensus.reached else "no_consensus"
    b.emit(DebateCompleted(**b.envelope(), status=status, consensus=consensus))  # type: ignore[arg-type]


def tally(
    *,
    agents: list[str],
    ballots: list[tuple[str, Vote | None]],
    candidates: list[str],
    threshold: float,
    answers: dict[str, str],
) -> Consensus:
    """Count valid votes; the winner's share is of all agents (abstentions count against)."""
    valid = [(voter, v) for voter, v in ballots if v is not None and v.choice in candidates]
    counts = {c: sum(1 for _, v in valid if v.choice == c) for c in candidates}
    best = max(counts.values(), default=0)
    leaders = [c for c in candidates if counts[c] == best and best > 0]
    winner = leaders[0] if len(leaders) == 1 else None  # a tie has no winner
    ratio = best / len(agents) if agents else 0.0
    reached = winner is not None and ratio >= threshold
    supporters = [voter for voter, v in valid if v.choice == winner]
    confidences = [v.confidence for _, v in valid if v.choice == winner]
    return Consensus(
        reached=reached,
        agreement_ratio=round(ratio, 4),
        confidence=round(sum(confidences) / len(confidences), 4) if confidences else 0.0,
        threshold=threshold,
        winner=winner,
        answer=answers.get(winner) if winner else None,
        supporters=supporters,
        dissenters=[a for a in agents if a not in supporters],
    )
