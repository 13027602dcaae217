"""The debate as pure functions: ``decide_*(state, input, ctx) -> Decision``.

No I/O, no clock, no randomness: time, ids and current ratings come in through
:class:`Ctx`, and everything a later replay needs (weights, the judge, convergence, the
proof, rating changes) is written into the events.

Protocol: ``rounds`` rounds of propose -> critique (skippable in the last round) ->
revise, agents in parallel per phase, critics assigned by the topology; after each
revise from round 2 convergence and STOP votes may end the debating early; then the
vote (not for ``none``), a judge's ruling (``judge``), one synthesis turn, and exactly
one terminal event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aragora.contracts.messages import (
    AgentTurnFailed,
    AgentTurnSucceeded,
    ConvergenceMeasured,
    DebateCompleted,
    DebateCreated,
    DebateEvent,
    DebateFailed,
    DebateQueued,
    PhaseStarted,
    RoundStarted,
    RunTurn,
    StartDebate,
    TurnCompleted,
    TurnFailed,
)
from aragora.contracts.values import (
    AgentFailure,
    Consensus,
    Phase,
    Protocol,
    Role,
    Stance,
    TurnSpec,
    Vote,
)
from aragora.orchestrator import ratings as elo
from aragora.orchestrator import similarity, tally
from aragora.orchestrator.context import context_for
from aragora.orchestrator.state import DebateState, evolve, replay
from aragora.orchestrator.topology import critique_targets

__all__ = ["NOTHING", "Ctx", "DebateState", "Decision", "evolve", "replay"]

STANCES: tuple[Stance, ...] = ("affirmative", "negative", "neutral")
TURN_GRACE_SECONDS = 5.0  # the runner reports its own timeouts; this is the backstop
STOP_SHARE = 0.85
IdFactory = Callable[[], str]


@dataclass(frozen=True)
class Ctx:
    """What a decision may depend on besides the state: injected, so rules stay pure."""

    now: datetime
    ids: IdFactory
    ratings: elo.Ratings = field(default_factory=elo.Ratings)
    similarity_method: similarity.Method = "tfidf"


@dataclass(frozen=True)
class Decision:
    events: list[DebateEvent]
    commands: list[RunTurn]


NOTHING = Decision(events=[], commands=[])


def stance_of(index: int, round_: int) -> Stance:
    # Rotates by agent index and round, as the reference system does.
    return STANCES[(index + round_ - 1) % len(STANCES)]


def resolve_protocol(command: StartDebate) -> Protocol:
    """The command's protocol as sent (the gateway resolved presets and defaults)."""
    if command.protocol is not None:
        return command.protocol
    return Protocol(rounds=command.rounds, consensus=command.consensus, threshold=command.threshold)


class _Builder:
    """Accumulates events with contiguous seq and the commands they imply."""

    def __init__(self, state: DebateState | None, ctx: Ctx, cause: str) -> None:
        self.state = state
        self.ctx = ctx
        self.cause = cause
        self.decision = Decision(events=[], commands=[])

    @property
    def s(self) -> DebateState:
        assert self.state is not None
        return self.state

    def env(self) -> dict[str, object]:
        return {
            "event_id": self.ctx.ids(),
            "occurred_at": self.ctx.now,
            "correlation_id": self.s.created.correlation_id,
            "causation_id": self.cause,
            "debate_id": self.s.debate_id,
            "seq": self.s.seq + 1,
        }

    def emit(self, event: DebateEvent) -> None:
        self.state = evolve(self.state, event)
        self.decision.events.append(event)


# --- start, queue, cancel ---------------------------------------------------------------------


def decide_start(command: StartDebate, ctx: Ctx, *, queue_position: int = 0) -> Decision:
    """Create the debate; start it, or queue it when the orchestrator is at capacity."""
    protocol = resolve_protocol(command)
    created = DebateCreated(
        event_id=ctx.ids(),
        occurred_at=ctx.now,
        correlation_id=command.correlation_id,
        causation_id=command.event_id,
        debate_id=command.debate_id,
        seq=1,
        topic=command.topic,
        agents=list(command.agents),
        rounds=protocol.rounds,
        consensus=protocol.consensus,
        threshold=tally.threshold_for(protocol.consensus, protocol.threshold),
        protocol=protocol,
        domain=command.domain,
    )
    b = _Builder(None, ctx, command.event_id)
    b.emit(created)
    if queue_position > 0:
        b.emit(DebateQueued(**b.env(), position=queue_position))  # type: ignore[arg-type]
    else:
        _start_round(b, 1)
    return b.decision


def decide_dequeue(state: DebateState, ctx: Ctx) -> Decision:
    if state.is_over or not state.queued:
        return NOTHING
    b = _Builder(state, ctx, state.created.event_id)
    _start_round(b, 1)
    return b.decision


def decide_cancel(state: DebateState, ctx: Ctx, reason: str, cause: str) -> Decision:
    if state.is_over:
        return NOTHING
    b = _Builder(state, ctx, cause)
    _end_failed(b, reason, status="cancelled")
    return b.decision


# --- phases -----------------------------------------------------------------------------------


def _start_round(b: _Builder, round_: int) -> None:
    b.emit(RoundStarted(**b.env(), round=round_))  # type: ignore[arg-type]
    _start_phase(b, "propose", list(b.s.agents))


def _spec(b: _Builder, agent: str, role: Role, targets: list[str] | None = None) -> TurnSpec:
    s = b.s
    return TurnSpec(
        turn_id=b.ctx.ids(),
        agent=agent,
        stance=stance_of(s.agents.index(agent), max(s.round, 1)),
        role=role,
        targets=targets or [],
    )


def _start_phase(
    b: _Builder,
    phase: Phase,
    agents: list[str],
    *,
    targets: dict[str, list[str]] | None = None,
    weights: dict[str, float] | None = None,
    note: str = "",
) -> None:
    role: Role = {"critique": "critic", "judge": "judge", "synthesis": "synthesizer"}.get(
        phase, "proposer"
    )  # type: ignore[assignment]
    specs = [_spec(b, a, role, (targets or {}).get(a)) for a in agents]
    b.emit(
        PhaseStarted(
            **b.env(),  # type: ignore[arg-type]
            round=b.s.round,
            phase=phase,
            turns=specs,
            weights=weights or {},
            note=note,
        )
    )
    for spec in specs:
        b.decision.commands.append(_run_turn(b, spec, phase))


def _run_turn(b: _Builder, spec: TurnSpec, phase: Phase) -> RunTurn:
    s = b.s
    p = s.protocol
    ask_continue = p.early_stop and s.round >= 2 and phase == "revise"
    return RunTurn(
        event_id=spec.turn_id,
        occurred_at=b.ctx.now,
        correlation_id=s.created.correlation_id,
        causation_id=b.decision.events[-1].event_id,
        turn_id=spec.turn_id,
        debate_id=s.debate_id,
        round=s.round,
        phase=phase,
        agent=spec.agent,
        stance=spec.stance,
        topic=s.topic,
        context=context_for(s, spec.agent, phase, spec.targets),
        candidates=_candidates(s) if phase in ("vote", "judge", "synthesis") else [],
        timeout_seconds=p.turn_timeout_seconds,
        role=spec.role,
        targets=spec.targets,
        ask_continue=ask_continue,
    )


def _candidates(s: DebateState) -> list[str]:
    return [a for a in s.agents if a in s.latest]


# --- results and deadlines --------------------------------------------------------------------


def decide_turn_result(
    state: DebateState, result: AgentTurnSucceeded | AgentTurnFailed, ctx: Ctx
) -> Decision:
    """Record an agent-runner's result; advance when the phase is complete.

    Idempotent: a result for a turn that is unknown, already resolved, or of a finished
    debate decides nothing (redeliveries and late results are harmless).
    """
    turn = state.turns.get(result.turn_id)
    if state.is_over or turn is None or turn.outcome is not None:
        return NOTHING
    b = _Builder(state, ctx, result.event_id)
    common = {"turn_id": turn.spec.turn_id, "round": turn.round, "phase": turn.phase}
    if isinstance(result, AgentTurnSucceeded):
        b.emit(
            TurnCompleted(
                **b.env(),  # type: ignore[arg-type]
                **common,  # type: ignore[arg-type]
                agent=turn.spec.agent,
                content=result.content,
                vote=result.vote if turn.phase in ("vote", "judge") else None,
                latency_ms=result.latency_ms,
                model=result.model,
                critiques=result.critiques if turn.phase == "critique" else [],
                continue_debate=result.continue_debate,
                structured=result.structured,
                parse_error=result.parse_error,
                rejected_answers=result.rejected_answers,
            )
        )
    else:
        b.emit(
            TurnFailed(
                **b.env(),  # type: ignore[arg-type]
                **common,  # type: ignore[arg-type]
                agent=turn.spec.agent,
                reason=result.reason,
                detail=result.detail,
            )
        )
    _advance_if_phase_done(b)
    return b.decision


def decide_deadlines(state: DebateState, ctx: Ctx) -> Decision:
    """Fail overdue turns (no runner answered) and time out an overdue debate."""
    if state.is_over:
        return NOTHING
    p = state.protocol
    b = _Builder(state, ctx, state.created.event_id)
    if ctx.now - state.created.occurred_at > timedelta(seconds=p.debate_timeout_seconds):
        _end_failed(b, f"debate exceeded {p.debate_timeout_seconds:g}s", status="timeout")
        return b.decision
    started = state.phase_started_at
    if started is None or state.queued:
        return NOTHING
    limit = p.turn_timeout_seconds + TURN_GRACE_SECONDS
    if p.phase_timeout_seconds > 0:
        limit = min(limit, p.phase_timeout_seconds)
    if ctx.now - started <= timedelta(seconds=limit):
        return NOTHING
    for turn in state.turns.values():
        if turn.outcome is None:
            b.emit(
                TurnFailed(
                    **b.env(),  # type: ignore[arg-type]
                    turn_id=turn.spec.turn_id,
                    round=turn.round,
                    phase=turn.phase,
                    agent=turn.spec.agent,
                    reason="no_result",
                    detail=f"no answer within the {limit:g}s phase deadline",
                )
            )
    _advance_if_phase_done(b)
    return b.decision


def _advance_if_phase_done(b: _Builder) -> None:
    s = b.s
    if s.phase is None or any(t.outcome is None for t in s.turns.values()):
        return
    need = tally.quorum(len(s.agents))
    p = s.protocol
    if s.phase in ("propose", "critique", "revise") and len(s.latest) < need:
        _end_failed(
            b,
            f"insufficient_participation: {len(s.latest)} of {len(s.agents)} agents "
            f"hold a position, quorum is {need}",
        )
        return
    if s.phase == "propose":
        final = s.round == p.rounds
        if final and p.skip_final_critique:
            _start_revise(b)
        else:
            targets = critique_targets(p.topology, _candidates(s), s.round)
            critics = [a for a in s.agents if targets.get(a)]
            if critics:
                _start_phase(b, "critique", critics, targets=targets)
            else:  # nobody has anyone to critique
                _start_revise(b)
    elif s.phase == "critique":
        _start_revise(b)
    elif s.phase == "revise":
        if _measure_and_maybe_stop(b) or s.round >= p.rounds:
            _start_decision(b)
        else:
            _start_round(b, s.round + 1)
    elif s.phase == "vote":
        if p.consensus == "judge":
            _start_judge(b)
        else:
            _start_synthesis(b, synthesizer=None)
    elif s.phase == "judge":
        _start_synthesis(b, synthesizer=next(iter(s.turns.values())).spec.agent)
    elif s.phase == "synthesis":
        _conclude(b)


def _start_revise(b: _Builder) -> None:
    _start_phase(b, "revise", [a for a in b.s.agents if a in b.s.latest])


def _measure_and_maybe_stop(b: _Builder) -> bool:
    """After revise from round 2: convergence and STOP votes. True: stop debating."""
    s = b.s
    if s.round < 2:
        return False
    p = s.protocol
    measured = similarity.measure_convergence(
        s.positions.get(s.round - 1, {}),
        s.positions.get(s.round, {}),
        method=b.ctx.similarity_method,
        converged_at=p.convergence_threshold,
    )
    answers = [t.continue_debate for t in s.phase_turns("revise", s.round)]
    stop_votes = [a for a in answers if a is not None]
    stop_share = (
        round(sum(1 for a in stop_votes if a is False) / len(stop_votes), 4) if stop_votes else None
    )
    reason = ""
    if p.early_stop and s.round < p.rounds:
        if measured.status == "converged":
            reason = "converged"
        elif stop_share is not None and stop_share >= STOP_SHARE:
            reason = "agents voted STOP"
    b.emit(
        ConvergenceMeasured(
            **b.env(),  # type: ignore[arg-type]
            round=s.round,
            method=measured.method,
            similarities=measured.similarities,
            min_similarity=measured.min_similarity,
            status=measured.status,
            stop_share=stop_share,
            early_stop=bool(reason),
            reason=reason,
        )
    )
    return bool(reason)


def _start_decision(b: _Builder) -> None:
    s = b.s
    if s.protocol.consensus == "none":
        _start_synthesis(b, synthesizer=None)
        return
    weights = (
        {a: elo.vote_weight(b.ctx.ratings.rating(a, s.domain)) for a in s.agents}
        if s.protocol.weighted
        else {}
    )
    _start_phase(b, "vote", _candidates(s), weights=weights)


def _start_judge(b: _Builder) -> None:
    s = b.s
    candidates = _candidates(s)
    how = s.protocol.judge_selection
    if how == "last":
        judge = candidates[-1]
    elif how == "random":  # deterministic per debate, so a replay picks the same judge
        digest = hashlib.sha256(s.debate_id.encode()).digest()
        judge = candidates[int.from_bytes(digest[:4], "big") % len(candidates)]
    else:
        judge = max(
            candidates, key=lambda a: (b.ctx.ratings.rating(a, s.domain), -candidates.index(a))
        )
    _start_phase(b, "judge", [judge], note=f"judge {judge} chosen by {how}")


def _start_synthesis(b: _Builder, synthesizer: str | None) -> None:
    s = b.s
    candidates = _candidates(s)
    if synthesizer is None:
        # The top-rated agent holding a position writes the synthesis.
        synthesizer = max(
            candidates, key=lambda a: (b.ctx.ratings.rating(a, s.domain), -candidates.index(a))
        )
    _start_phase(b, "synthesis", [synthesizer], note=f"synthesis by {synthesizer}")


# --- the end ----------------------------------------------------------------------------------


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


def _end_failed(b: _Builder, reason: str, status: str = "failed") -> None:
    b.emit(
        DebateFailed(
            **b.env(),  # type: ignore[arg-type]
            status=status,  # type: ignore[arg-type]
            reason=reason,
            failures=_failures(b.s),
        )
    )


def _conclude(b: _Builder) -> None:
    s = b.s
    p = s.protocol
    synthesis_turns = s.phase_turns("synthesis")
    synthesis = synthesis_turns[-1].content if synthesis_turns else None
    ballots = _ballots(s)
    candidates = _candidates(s)
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
            _end_failed(
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
    import msgspec

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
