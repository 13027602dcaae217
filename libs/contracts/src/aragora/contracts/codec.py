"""JSON encoding and decoding of bus messages (one reusable Decoder per union)."""

from __future__ import annotations

from typing import Any

import msgspec

from aragora.contracts.messages import (
    AgentBreakerChanged,
    AgentEventType,
    CommandType,
    DebateEventType,
    TokenDelta,
)
from aragora.contracts.security import SecurityEvent

_encoder = msgspec.json.Encoder()
_debate_events = msgspec.json.Decoder(DebateEventType)
_commands = msgspec.json.Decoder(CommandType)
_agent_events = msgspec.json.Decoder(AgentEventType)
_breaker_events = msgspec.json.Decoder(AgentBreakerChanged)
_token_deltas = msgspec.json.Decoder(TokenDelta)
_security_events = msgspec.json.Decoder(SecurityEvent)

DecodeError = msgspec.DecodeError


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


def decode_debate_event(data: bytes) -> DebateEventType:
    result: DebateEventType = _debate_events.decode(data)
    return result


def decode_command(data: bytes) -> CommandType:
    result: CommandType = _commands.decode(data)
    return result


def decode_agent_event(data: bytes) -> AgentEventType:
    result: AgentEventType = _agent_events.decode(data)
    return result


def decode_breaker_event(data: bytes) -> AgentBreakerChanged:
    result: AgentBreakerChanged = _breaker_events.decode(data)
    return result


def decode_token_delta(data: bytes) -> TokenDelta:
    result: TokenDelta = _token_deltas.decode(data)
    return result


def decode_security_event(data: bytes) -> SecurityEvent:
    result: SecurityEvent = _security_events.decode(data)
    return result


def to_builtins(message: msgspec.Struct) -> dict[str, Any]:
    """The message as the JSON object it is on the wire (for REST and WebSocket)."""
    result = msgspec.to_builtins(message)
    assert isinstance(result, dict)
    return result
