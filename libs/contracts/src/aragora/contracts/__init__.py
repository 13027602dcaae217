"""Aragora's shared language: the messages on the bus, their subjects and streams.

Everything here is pure data (msgspec Structs) and pure functions: no I/O, no settings.
Wire names are explicit string tags, never derived from Python class names, so classes can
be renamed freely; evolution is additive (new fields get defaults, decoders ignore unknown
fields); a breaking change is a new tag plus an upcaster.
"""

from aragora.contracts.messages import (
    AGENT_EVENT_TYPES,
    COMMAND_TYPES,
    DEBATE_EVENT_TYPES,
    AgentEvent,
    AgentTurnFailed,
    AgentTurnSucceeded,
    CancelDebate,
    Command,
    Consensus,
    ConvergenceMeasured,
    DebateCompleted,
    DebateCreated,
    DebateEvent,
    DebateFailed,
    DebateQueued,
    PeerMessage,
    PhaseStarted,
    RoundStarted,
    RunTurn,
    StartDebate,
    TokenDelta,
    TurnCompleted,
    TurnFailed,
    TurnSpec,
    Vote,
)

__all__ = [
    "AGENT_EVENT_TYPES",
    "COMMAND_TYPES",
    "DEBATE_EVENT_TYPES",
    "AgentEvent",
    "AgentTurnFailed",
    "AgentTurnSucceeded",
    "CancelDebate",
    "Command",
    "Consensus",
    "ConvergenceMeasured",
    "DebateCompleted",
    "DebateCreated",
    "DebateEvent",
    "DebateFailed",
    "DebateQueued",
    "PeerMessage",
    "PhaseStarted",
    "RoundStarted",
    "RunTurn",
    "StartDebate",
    "TokenDelta",
    "TurnCompleted",
    "TurnFailed",
    "TurnSpec",
    "Vote",
]
