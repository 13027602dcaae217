"""Request bodies of the debate API and how they become a protocol (validation only)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.exceptions import ValidationException

from aragora.contracts.values import (
    PRESET_ROUNDS,
    ConsensusMode,
    JudgeSelection,
    Preset,
    Protocol,
    Topology,
)
from aragora.runtime.settings import Settings

Seconds = Annotated[float, msgspec.Meta(gt=0, le=86400)]
Rounds = Annotated[int, msgspec.Meta(ge=1, le=12)]
Share = Annotated[float, msgspec.Meta(ge=0, le=1)]
Budget = Annotated[float, msgspec.Meta(ge=0, le=1_000_000)]  # USD; 0: no limit


class ProtocolRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Every field optional: unset ones come from the preset, then the server's settings."""

    preset: Preset | None = None
    rounds: Rounds | None = None
    skip_final_critique: bool | None = None
    topology: Topology | None = None
    consensus: ConsensusMode | None = None
    threshold: Share | None = None
    judge_selection: JudgeSelection | None = None
    weighted: bool | None = None
    early_stop: bool | None = None
    convergence_threshold: Share | None = None
    turn_timeout_seconds: Seconds | None = None
    phase_timeout_seconds: Annotated[float, msgspec.Meta(ge=0, le=86400)] | None = None
    debate_timeout_seconds: Seconds | None = None
    max_cost_usd: Budget | None = None


class CreateDebate(msgspec.Struct, forbid_unknown_fields=True):
    topic: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
    agents: list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]] | None = None
    rounds: Rounds | None = None
    consensus: ConsensusMode | None = None
    domain: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")] = "general"
    public: bool = False  # every user may read it (else only its creator, admins and owners)
    protocol: ProtocolRequest | None = None
    max_cost_usd: Budget | None = None  # same as protocol.max_cost_usd


def invalid(field: str, message: str) -> ValidationException:
    return ValidationException(
        detail=f"Validation failed: {field}: {message}",
        extra=[{"key": field, "message": message, "source": "body"}],
    )


def resolve_protocol(data: CreateDebate, settings: Settings) -> Protocol:
    """Request fields, then the preset, then the server's defaults (ARAGORA_* settings)."""
    req = data.protocol or ProtocolRequest()
    if data.rounds is not None and req.rounds is not None and data.rounds != req.rounds:
        raise invalid("rounds", "given twice with different values (top level and protocol)")
    if data.consensus and req.consensus and data.consensus != req.consensus:
        raise invalid("consensus", "given twice with different values (top level and protocol)")
    budgets = {b for b in (data.max_cost_usd, req.max_cost_usd) if b is not None}
    if len(budgets) > 1:
        raise invalid("max_cost_usd", "given twice with different values (top level and protocol)")
    rounds = req.rounds or data.rounds
    if rounds is None:
        rounds = PRESET_ROUNDS[req.preset] if req.preset else settings.default_rounds
    base = Protocol(
        rounds=rounds,
        threshold=settings.consensus_threshold,
        turn_timeout_seconds=settings.agent_timeout_seconds,
        debate_timeout_seconds=settings.debate_timeout_seconds,
        max_cost_usd=settings.default_max_cost_usd,
    )
    chosen: dict[str, object] = {
        f: getattr(req, f)
        for f in ProtocolRequest.__struct_fields__
        if getattr(req, f) is not None and f != "rounds"
    }
    if data.consensus:
        chosen["consensus"] = data.consensus
    if budgets:
        chosen["max_cost_usd"] = budgets.pop()
    protocol = msgspec.structs.replace(base, **chosen)
    if protocol.consensus in ("majority", "supermajority") and protocol.threshold <= 0:
        raise invalid("protocol.threshold", "must be above 0 for majority modes (use 'any')")
    return protocol
