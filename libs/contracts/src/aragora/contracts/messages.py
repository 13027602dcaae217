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

Phase = Literal["propose", "critique", "revise", "vote"]
Stance = Literal["affirmative", "negative", "neutral"]
ConsensusMode = Literal["majority", "supermajority", "unanimous"]
TerminalStatus = Literal["consensus", "no_consensus", "failed", "timeout", "cancelled"]
FailureReason = Literal["timeout", "provider_error", "unknown_agent", "rejected", "no_result"]


class _Base(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Envelope shared by every message."""

    event_id: str
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None = None


# --- value objects -------------------------------------------------------------------------


class TurnSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One agent's turn within a phase."""

    turn_id: str
    agent: str
    stance: Stance


class Vote(msgspec.Struct, frozen=True, kw_only=True):
    """A ballot: ``choice`` names the agent whose final answer the voter supports."""

    choice: str
    confidence: float
    reasoning: str = ""


class Consensus(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of the vote, with who agreed and who dissented."""

    reached: bool
    agreement_ratio: float
    confidence: float
    threshold: float
    winner: str | None
    answer: str | None
    supporters: list[str]
    dissenters: list[str]


class PeerMessage(msgspec.Struct, frozen=True, kw_only=True):
    """Text another agent produced, passed to an agent as quoted data with its author."""

    agent: str
    round: int
    phase: Phase
    content: str


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


class RoundStarted(DebateEvent, frozen=True, kw_only=True, tag="debate.round_started"):
    round: int


class PhaseStarted(DebateEvent, frozen=True, kw_only=True, tag="debate.phase_started"):
    round: int
    phase: Phase
    turns: list[TurnSpec]


class TurnCompleted(DebateEvent, frozen=True, kw_only=True, tag="debate.turn_completed"):
    turn_id: str
    round: int
    phase: Phase
    agent: str
    content: str
    vote: Vote | None = None
    latency_ms: int = 0
    model: str = ""


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


class DebateFailed(DebateEvent, frozen=True, kw_only=True, tag="debate.failed"):
    status: Literal["failed", "timeout", "cancelled"]
    reason: str


DebateEventType = (
    DebateCreated
    | RoundStarted
    | PhaseStarted
    | TurnCompleted
    | TurnFailed
    | DebateCompleted
    | DebateFailed
)
DEBATE_EVENT_TYPES: tuple[type[DebateEvent], ...] = (
    DebateCreated,
    RoundStarted,
    PhaseStarted,
    TurnCompleted,
    TurnFailed,
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


CommandType = StartDebate | RunTurn
COMMAND_TYPES: tuple[type[Command], ...] = (StartDebate, RunTurn)


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


class AgentTurnFailed(AgentEvent, frozen=True, kw_only=True, tag="agent.turn_failed"):
    reason: FailureReason
    detail: str = ""
    latency_ms: int = 0


AgentEventType = AgentTurnSucceeded | AgentTurnFailed
AGENT_EVENT_TYPES: tuple[type[AgentEvent], ...] = (AgentTurnSucceeded, AgentTurnFailed)


def tag_of(message_type: type[msgspec.Struct]) -> str:
    """The stable wire tag of a message class."""
    tag = message_type.__struct_config__.tag
    assert isinstance(tag, str)
    return tag
