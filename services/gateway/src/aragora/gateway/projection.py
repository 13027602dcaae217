"""Read-model fold: debate events -> the JSON view served by ``GET /api/debates/{id}``.

Pure functions; the projector applies them inside one database transaction per event.
"""

from __future__ import annotations

from typing import Any

import msgspec

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

View = dict[str, Any]
RUNNING = "running"


def initial_view(
    debate_id: str,
    topic: str,
    agents: list[str],
    rounds: int,
    created_at: str,
    *,
    requested_by: str = "",
    public: bool = False,
) -> View:
    return {
        "id": debate_id,
        "topic": topic,
        "status": RUNNING,
        "agents": agents,
        "rounds": rounds,
        "consensus_mode": None,
        "created_at": created_at,
        "completed_at": None,
        "current_round": 0,
        "current_phase": None,
        "turns": [],
        "votes": [],
        "consensus": None,
        "proof": None,
        "synthesis": None,
        "convergence": [],
        "failures": [],
        "ratings": [],
        "reason": None,
        "error": None,
        "domain": "general",
        "protocol": None,
        "usage": empty_usage(),
        "requested_by": requested_by,
        "public": public,
        "last_seq": 0,
    }


def empty_usage(max_cost_usd: float = 0.0) -> dict[str, Any]:
    """The debate's token use and cost so far, against its budget (``max_cost_usd`` 0: none)."""
    return {
        "turns": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost_usd": 0.0,
        "max_cost_usd": max_cost_usd,
        "budget_remaining_usd": max_cost_usd if max_cost_usd > 0 else None,
    }


def _add_usage(usage: dict[str, Any] | None, event: TurnCompleted) -> dict[str, Any]:
    u = {**(usage or empty_usage())}
    u["turns"] += 1
    u["prompt_tokens"] += event.prompt_tokens
    u["completion_tokens"] += event.completion_tokens
    u["cost_usd"] = round(u["cost_usd"] + event.cost_usd, 6)
    if u["max_cost_usd"] > 0:
        u["budget_remaining_usd"] = round(max(0.0, u["max_cost_usd"] - u["cost_usd"]), 6)
    return u


def apply(view: View | None, event: DebateEvent) -> View:
    """Fold one event into the view (a new dict; the input is not changed)."""
    if isinstance(event, DebateCreated):
        base = view or initial_view(
            event.debate_id, event.topic, event.agents, event.rounds, _ts(event)
        )
        view = {
            **base,
            "topic": event.topic,
            "agents": event.agents,
            "rounds": event.rounds,
            "consensus_mode": event.consensus,
            "threshold": event.threshold,
            "created_at": _ts(event),
            "domain": event.domain,
            "requested_by": event.requested_by,
            "public": event.public,
            "protocol": msgspec.to_builtins(event.protocol) if event.protocol else None,
            "usage": empty_usage(event.protocol.max_cost_usd if event.protocol else 0.0),
        }
    elif view is None:
        raise ValueError(f"{type(event).__name__} before debate.created")
    else:
        view = {**view}
    if isinstance(event, DebateQueued):
        view["status"] = "queued"
    elif isinstance(event, RoundStarted):
        view["current_round"] = event.round
        view["status"] = RUNNING
    elif isinstance(event, ConvergenceMeasured):
        view["convergence"] = [*view.get("convergence", []), _builtins(event)]
    elif isinstance(event, PhaseStarted):
        view["current_phase"] = event.phase
        view["turns"] = [
            *view["turns"],
            *(
                {
                    "turn_id": t.turn_id,
                    "round": event.round,
                    "phase": event.phase,
                    "agent": t.agent,
                    "stance": t.stance,
                    "role": t.role,
                    "status": "pending",
                }
                for t in event.turns
            ),
        ]
    elif isinstance(event, TurnCompleted | TurnFailed):
        view["turns"] = [_resolve(t, event) for t in view["turns"]]
        if isinstance(event, TurnCompleted):
            view["usage"] = _add_usage(view.get("usage"), event)
        if isinstance(event, TurnCompleted) and event.vote is not None and event.phase == "judge":
            view["judge"] = {"agent": event.agent, **msgspec.to_builtins(event.vote)}
        elif isinstance(event, TurnCompleted) and event.vote is not None:
            vote = event.vote
            view["votes"] = [
                *view["votes"],
                {
                    "agent": event.agent,
                    "choice": vote.choice,
                    "confidence": vote.confidence,
                    "reasoning": vote.reasoning,
                },
            ]
    elif isinstance(event, DebateCompleted):
        c = event.consensus
        view["status"] = event.status
        view["completed_at"] = _ts(event)
        view["consensus"] = msgspec.to_builtins(c)
        view["proof"] = msgspec.to_builtins(event.proof) if event.proof else None
        view["synthesis"] = event.synthesis
        view["failures"] = msgspec.to_builtins(event.failures)
        view["ratings"] = msgspec.to_builtins(event.ratings)
        view["reason"] = event.reason
    elif isinstance(event, DebateFailed):
        view["status"] = event.status
        view["completed_at"] = _ts(event)
        view["error"] = event.reason
        view["failures"] = msgspec.to_builtins(event.failures)
    view["last_seq"] = event.seq
    return view


def _resolve(turn: dict[str, Any], event: TurnCompleted | TurnFailed) -> dict[str, Any]:
    if turn["turn_id"] != event.turn_id:
        return turn
    if isinstance(event, TurnCompleted):
        done = {
            **turn,
            "status": "completed",
            "content": event.content,
            "latency_ms": event.latency_ms,
            "model": event.model,
            "structured": event.structured,
            "provider": event.provider,
            "prompt_tokens": event.prompt_tokens,
            "completion_tokens": event.completion_tokens,
            "cost_usd": event.cost_usd,
        }
        if event.served_by:
            done["served_by"] = event.served_by
            done["fallback_reason"] = event.fallback_reason
        if event.critiques:
            done["critiques"] = msgspec.to_builtins(event.critiques)
        if event.continue_debate is not None:
            done["continue"] = event.continue_debate
        if event.parse_error:
            done["parse_error"] = event.parse_error
        return done
    return {**turn, "status": "failed", "reason": event.reason, "detail": event.detail}


def _builtins(event: DebateEvent) -> dict[str, Any]:
    body = msgspec.to_builtins(event)
    assert isinstance(body, dict)
    for envelope in ("type", "event_id", "occurred_at", "correlation_id", "causation_id"):
        body.pop(envelope, None)
    body.pop("debate_id", None)
    return body


def _ts(event: DebateEvent) -> str:
    return event.occurred_at.isoformat()


def is_terminal(event: DebateEvent) -> bool:
    return isinstance(event, DebateCompleted | DebateFailed)


def is_terminal_type(tag: str) -> bool:
    return tag in ("debate.completed", "debate.failed")
