"""The debate as pure functions: ``decide_*(state, input, ctx) -> Decision``.

No I/O, no clock, no randomness: time, ids and current ratings come in through
:class:`Ctx`, and everything a later replay needs (weights, the judge, convergence, the
proof, rating changes) is written into the events.

Protocol: ``rounds`` rounds of propose -> critique (skippable in the last round) ->
revise, agents in parallel per phase, critics assigned by the topology; after each
revise from round 2 convergence and STOP votes may end the debating early; then the
vote (not for ``none``), a judge's ruling (``judge``), one synthesis turn, and exactly
one terminal event. A debate whose completed turns cost more than ``max_cost_usd``
ends ``budget_exceeded`` when its current phase's turns have landed.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from aragora.contracts.messages import (
    AgentTurnFailed,
    AgentTurnSucceeded,
    ConvergenceMeasured,
    DebateCreated,
    DebateQueued,
    PhaseStarted,
    RoundStarted,
    RunTurn,
    StartDebate,
    TurnCompleted,
    TurnFailed,
)
from aragora.contracts.values import (
    Phase,
    Protocol,
    Role,
    TurnSpec,
)
from aragora.orchestrator import ratings as elo
from aragora.orchestrator import similarity, tally
from aragora.orchestrator.builder import NOTHING, Builder, Ctx, Decision, stance_of
from aragora.orchestrator.conclusion import conclude, end_failed
from aragora.orchestrator.context import context_for
from aragora.orchestrator.state import DebateState, evolve, replay
from aragora.orchestrator.topology import critique_targets

__all__ = ["NOTHING", "Ctx", "DebateState", "Decision", "evolve", "replay"]

TURN_GRACE_SECONDS = 5.0  # the runner reports its own timeouts; this is the backstop
STOP_SHARE = 0.85


def resolve_protocol(command: StartDebate) -> Protocol:
    """The command's protocol as sent (the gateway resolved presets and defaults)."""
    if command.protocol is not None:
        return command.protocol
    return Protocol(rounds=command.rounds, consensus=command.consensus, threshold=command.threshold)


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
        requested_by=command.requested_by,
        public=command.public,
        agents=list(command.agents),
        rounds=protocol.rounds,
        consensus=protocol.consensus,
        threshold=tally.threshold_for(protocol.consensus, protocol.threshold),
        protocol=protocol,
        domain=command.domain,
    )
    b = Builder(None, ctx, command.event_id)
    b.emit(created)
    if queue_position > 0:
        b.emit(DebateQueued(**b.env(), position=queue_position))  # type: ignore[arg-type]
    else:
        _start_round(b, 1)
    return b.decision


def decide_dequeue(state: DebateState, ctx: Ctx) -> Decision:
    if state.is_over or not state.queued:
        return NOTHING
    b = Builder(state, ctx, state.created.event_id)
    _start_round(b, 1)
    return b.decision


def decide_cancel(state: DebateState, ctx: Ctx, reason: str, cause: str) -> Decision:
    if state.is_over:
        return NOTHING
    b = Builder(state, ctx, cause)
    end_failed(b, reason, status="cancelled")
    return b.decision


# --- phases -----------------------------------------------------------------------------------


def _start_round(b: Builder, round_: int) -> None:
    b.emit(RoundStarted(**b.env(), round=round_))  # type: ignore[arg-type]
    _start_phase(b, "propose", list(b.s.agents))


def _spec(b: Builder, agent: str, role: Role, targets: list[str] | None = None) -> TurnSpec:
    s = b.s
    return TurnSpec(
        turn_id=b.ctx.ids(),
        agent=agent,
        stance=stance_of(s.agents.index(agent), max(s.round, 1)),
        role=role,
        targets=targets or [],
    )


def _start_phase(
    b: Builder,
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


def _run_turn(b: Builder, spec: TurnSpec, phase: Phase) -> RunTurn:
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
        candidates=s.candidates if phase in ("vote", "judge", "synthesis") else [],
        timeout_seconds=p.turn_timeout_seconds,
        role=spec.role,
        targets=spec.targets,
        ask_continue=ask_continue,
    )


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
    b = Builder(state, ctx, result.event_id)
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
                provider=result.provider,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                cost_usd=result.cost_usd,
                served_by=result.served_by,
                fallback_reason=result.fallback_reason,
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
    b = Builder(state, ctx, state.created.event_id)
    if ctx.now - state.created.occurred_at > timedelta(seconds=p.debate_timeout_seconds):
        end_failed(b, f"debate exceeded {p.debate_timeout_seconds:g}s", status="timeout")
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


def _advance_if_phase_done(b: Builder) -> None:
    s = b.s
    if s.phase is None or any(t.outcome is None for t in s.turns.values()):
        return
    if s.over_budget:  # the phase's turns have all landed: start nothing more
        spent, limit = _dollars(s.cost_usd, s.protocol.max_cost_usd)
        end_failed(b, f"spent ${spent} of max_cost_usd ${limit}", status="budget_exceeded")
        return
    need = tally.quorum(len(s.agents))
    p = s.protocol
    if s.phase in ("propose", "critique", "revise") and len(s.latest) < need:
        end_failed(
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
            targets = critique_targets(p.topology, s.candidates, s.round)
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
        conclude(b)


def _dollars(spent: float, limit: float) -> tuple[str, str]:
    """Both amounts with 4 decimals, or up to 6 where 4 would hide the difference."""
    for places in (4, 5):
        pair = (f"{spent:.{places}f}", f"{limit:.{places}f}")
        if pair[0] != pair[1] and float(pair[1]) > 0:
            return pair
    return f"{spent:.6f}", f"{limit:.6f}"


def _start_revise(b: Builder) -> None:
    _start_phase(b, "revise", [a for a in b.s.agents if a in b.s.latest])


def _measure_and_maybe_stop(b: Builder) -> bool:
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


def _start_decision(b: Builder) -> None:
    s = b.s
    if s.protocol.consensus == "none":
        _start_synthesis(b, synthesizer=None)
        return
    weights = (
        {a: elo.vote_weight(b.ctx.ratings.rating(a, s.domain)) for a in s.agents}
        if s.protocol.weighted
        else {}
    )
    _start_phase(b, "vote", s.candidates, weights=weights)


def _start_judge(b: Builder) -> None:
    s = b.s
    candidates = s.candidates
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


def _start_synthesis(b: Builder, synthesizer: str | None) -> None:
    s = b.s
    candidates = s.candidates
    if synthesizer is None:
        # The top-rated agent holding a position writes the synthesis.
        synthesizer = max(
            candidates, key=lambda a: (b.ctx.ratings.rating(a, s.domain), -candidates.index(a))
        )
    _start_phase(b, "synthesis", [synthesizer], note=f"synthesis by {synthesizer}")
