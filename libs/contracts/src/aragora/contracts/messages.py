"""Message types, version 1.

Three families travel on the bus:

* debate events (``debate.*``): facts recorded by the orchestrator in the event store, each
  with a per-debate ``seq`` starting at 1 and contiguous;
* commands (``cmd.*``): requests to act, consumed by exactly one service;
* agent events (``agent.*``): facts reported by an agent-runner about one turn.

Every message carries the envelope ``event_id`` (also the ``Nats-Msg-Id``), ``occurred_at``,
``correlation_id`` and ``causation_id``. The ``type`` field holds the stable tag.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from aragora.contracts.values import (
    AgentFailure,
    Consensus,
    ConsensusMode,
    ConsensusProof,
    ConvergenceStatus,
    Critique,
    FailureReason,
    PeerMessage,
    Phase,
    Protocol,
    RatingChange,
    Role,
    Stance,
    TurnSpec,
    Vote,
)

__all__ = [
    "AgentFailure",
    "Consensus",
    "ConsensusMode",
    "ConsensusProof",
    "Critique",
    "FailureReason",
    "PeerMessage",
    "Phase",
    "Protocol",
    "RatingChange",
    "Role",
    "Stance",
    "TurnSpec",
    "Vote",
]


class _Base(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Envelope shared by every message."""

    event_id: str
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None = None


# --- debate events (recorded by the orchestrator; per-debate seq) ----------------------------


class DebateEvent(_Base, frozen=True, kw_only=True):
    debate_id: str
    seq: int


class DebateCreated(DebateEvent, frozen=True, kw_only=True, tag="debate.created"):
    topic: str
    agents: list[str]
    rounds: int
    consensus: ConsensusMode
    threshold: float
    protocol: Protocol | None = None  # None: a v1.0 debate (defaults + the fields above)
    domain: str = "general"
    requested_by: str = ""  # who asked (account email, "service"); empty before accounts
    public: bool = False  # visible to every user, not only its creator and admins


class DebateQueued(DebateEvent, frozen=True, kw_only=True, tag="debate.queued"):
    """The orchestrator is at ARAGORA_MAX_CONCURRENT_DEBATES; the debate waits its turn."""

    position: int


class RoundStarted(DebateEvent, frozen=True, kw_only=True, tag="debate.round_started"):
    round: int


class PhaseStarted(DebateEvent, frozen=True, kw_only=True, tag="debate.phase_started"):
    round: int
    phase: Phase
    turns: list[TurnSpec]
    weights: dict[str, float] = {}  # vote weights in force (weighted consensus)
    note: str = ""  # why this phase (e.g. "judge chosen by elo", "judge failed: majority")


class TurnCompleted(DebateEvent, frozen=True, kw_only=True, tag="debate.turn_completed"):
    turn_id: str
    round: int
    phase: Phase
    agent: str
    content: str
    vote: Vote | None = None
    latency_ms: int = 0
    model: str = ""
    critiques: list[Critique] = []
    continue_debate: bool | None = None
    structured: bool = True  # False: the answer could not be parsed, even when re-asked
    parse_error: str = ""
    rejected_answers: list[str] = []  # unparsable answers that were re-asked
    provider: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0  # from the price table in force when the turn ran
    # Fallback: the agent whose provider actually answered for ``agent`` (empty: itself),
    # and why the turn was routed there (quota error, open circuit breaker).
    served_by: str = ""
    fallback_reason: str = ""


class ConvergenceMeasured(
    DebateEvent, frozen=True, kw_only=True, tag="debate.convergence_measured"
):
    """After a revise phase: each agent's text against its previous round, and STOP votes."""

    round: int
    method: str
    similarities: dict[str, float]
    min_similarity: float | None
    status: ConvergenceStatus | None
    stop_share: float | None = None
    early_stop: bool = False
    reason: str = ""


class TurnFailed(DebateEvent, frozen=True, kw_only=True, tag="debate.turn_failed"):
    turn_id: str
    round: int
    phase: Phase
    agent: str
    reason: FailureReason
    detail: str = ""


class DebateCompleted(DebateEvent, frozen=True, kw_only=True, tag="debate.completed"):
    status: Literal["consensus", "no_consensus"]
    consensus: Consensus
    proof: ConsensusProof | None = None
    synthesis: str | None = None
    ratings: list[RatingChange] = []
    failures: list[AgentFailure] = []
    reason: str = ""  # how it ended: "vote", "judge", "early_stop", ...


class DebateFailed(DebateEvent, frozen=True, kw_only=True, tag="debate.failed"):
    status: Literal["failed", "timeout", "cancelled", "budget_exceeded"]
    reason: str
    failures: list[AgentFailure] = []


DebateEventType = (
    DebateCreated
    | DebateQueued
    | RoundStarted
    | PhaseStarted
    | TurnCompleted
    | TurnFailed
    | ConvergenceMeasured
    | DebateCompleted
    | DebateFailed
)
DEBATE_EVENT_TYPES: tuple[type[DebateEvent], ...] = (
    DebateCreated,
    DebateQueued,
    RoundStarted,
    PhaseStarted,
    TurnCompleted,
    TurnFailed,
    ConvergenceMeasured,
    DebateCompleted,
    DebateFailed,
)
TERMINAL_EVENT_TYPES: tuple[type[DebateEvent], ...] = (DebateCompleted, DebateFailed)


# --- commands ---------------------------------------------------------------------------------


class Command(_Base, frozen=True, kw_only=True):
    pass


class StartDebate(Command, frozen=True, kw_only=True, tag="cmd.debate.start"):
    """Gateway -> orchestrator. Idempotent by ``debate_id``."""

    debate_id: str
    topic: str
    agents: list[str]
    rounds: int
    consensus: ConsensusMode = "majority"
    threshold: float = 0.6
    protocol: Protocol | None = None  # None: defaults plus the three fields above
    domain: str = "general"
    requested_by: str = ""  # the caller the gateway authenticated (email, or "service")
    public: bool = False  # visible to every user, not only its creator and admins


class CancelDebate(Command, frozen=True, kw_only=True, tag="cmd.debate.cancel"):
    """Gateway -> orchestrator: end a running or queued debate as ``cancelled``."""

    debate_id: str
    reason: str = "cancelled by request"


class RunTurn(Command, frozen=True, kw_only=True, tag="cmd.agent.run_turn"):
    """Orchestrator -> agent-runner. Idempotent by ``turn_id``.

    ``context`` holds peers' text as data; ``candidates`` lists the agents one may vote for.
    """

    turn_id: str
    debate_id: str
    round: int
    phase: Phase
    agent: str
    stance: Stance
    topic: str
    context: list[PeerMessage] = []
    candidates: list[str] = []
    timeout_seconds: float = 60.0
    role: Role = "proposer"
    targets: list[str] = []  # critique: the peers to review (by topology)
    ask_continue: bool = False  # revise/vote: also answer CONTINUE or STOP
    persona: str = ""


CommandType = StartDebate | CancelDebate | RunTurn
COMMAND_TYPES: tuple[type[Command], ...] = (StartDebate, CancelDebate, RunTurn)


# --- agent events (reported by agent-runners) ---------------------------------------------


class AgentEvent(_Base, frozen=True, kw_only=True):
    debate_id: str
    turn_id: str
    agent: str


class AgentTurnSucceeded(AgentEvent, frozen=True, kw_only=True, tag="agent.turn_succeeded"):
    content: str
    vote: Vote | None = None
    latency_ms: int = 0
    provider: str = ""
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    critiques: list[Critique] = []
    continue_debate: bool | None = None
    structured: bool = True
    parse_error: str = ""
    rejected_answers: list[str] = []
    cost_usd: float = 0.0
    served_by: str = ""  # a fallback agent answered instead of ``agent`` (see TurnCompleted)
    fallback_reason: str = ""


class AgentTurnFailed(AgentEvent, frozen=True, kw_only=True, tag="agent.turn_failed"):
    reason: FailureReason
    detail: str = ""
    latency_ms: int = 0


AgentEventType = AgentTurnSucceeded | AgentTurnFailed
AGENT_EVENT_TYPES: tuple[type[AgentEvent], ...] = (AgentTurnSucceeded, AgentTurnFailed)


BreakerStateName = Literal["closed", "open", "half_open"]


class AgentBreakerChanged(_Base, frozen=True, kw_only=True, tag="agent.breaker_changed"):
    """An agent's circuit breaker changed state.

    Published on ``aragora.evt.agent.breaker.<agent>``. Not a turn result: it carries no
    debate. ``open_until`` is set while the breaker is open.
    """

    agent: str
    state: BreakerStateName
    previous: BreakerStateName
    consecutive_failures: int = 0
    opened_at: datetime | None = None
    open_until: datetime | None = None
    reason: str = ""


BREAKER_EVENT_TYPES: tuple[type[AgentBreakerChanged], ...] = (AgentBreakerChanged,)


# --- live, ephemeral messages (core NATS, never stored) --------------------------------------


class TokenDelta(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="agent.token_delta"
):
    """A coalesced piece of an agent's answer while the model is still writing it.

    Published on core NATS at ``aragora.live.debate.<debate_id>.tokens``: ephemeral, never
    stored or replayed, so it carries no envelope. ``index`` counts 0, 1, 2, ... per turn;
    the last delta of a turn has ``done`` true (its ``text`` may be empty). The stored
    ``agent.turn_succeeded`` / ``debate.turn_completed`` hold the final text.
    """

    debate_id: str
    turn_id: str
    agent: str
    round: int
    phase: Phase
    index: int
    text: str
    done: bool = False


LIVE_TYPES: tuple[type[TokenDelta], ...] = (TokenDelta,)


def tag_of(message_type: type[msgspec.Struct]) -> str:
    """The stable wire tag of a message class."""
    tag = message_type.__struct_config__.tag
    assert isinstance(tag, str)
    return tag
