"""AsyncAPI 3.0 document and JSON Schemas generated from the message types.

The gateway serves the document at ``/api/asyncapi.json``; ``docs/`` shows how a system
outside the project subscribes. Generated, never hand-written, so it cannot drift.
"""

from __future__ import annotations

from typing import Any

import msgspec

from aragora.contracts.messages import (
    AGENT_EVENT_TYPES,
    BREAKER_EVENT_TYPES,
    COMMAND_TYPES,
    DEBATE_EVENT_TYPES,
    LIVE_TYPES,
    AgentBreakerChanged,
    CancelDebate,
    RunTurn,
    StartDebate,
    TokenDelta,
    tag_of,
)
from aragora.contracts.security import SECURITY_EVENT_TYPES, SecurityEvent
from aragora.contracts.subjects import CANCEL_DEBATE, PREFIX, RUN_TURN, START_DEBATE

SCHEMA_VERSION = "1"
_ALL = (
    *DEBATE_EVENT_TYPES,
    *COMMAND_TYPES,
    *AGENT_EVENT_TYPES,
    *BREAKER_EVENT_TYPES,
    *LIVE_TYPES,
    *SECURITY_EVENT_TYPES,
)


def _message_name(message_type: type[msgspec.Struct]) -> str:
    return tag_of(message_type).replace(".", "_")


def json_schemas() -> dict[str, Any]:
    """JSON Schema (draft 2020-12 components) for every message, keyed by class name."""
    _, components = msgspec.json.schema_components(_ALL, ref_template="#/components/schemas/{name}")
    return components


def _channel(address: str, description: str, types: tuple[type[msgspec.Struct], ...]) -> Any:
    return {
        "address": address,
        "description": description,
        "messages": {
            _message_name(t): {"$ref": f"#/components/messages/{_message_name(t)}"} for t in types
        },
    }


def asyncapi_document(version: str) -> dict[str, Any]:
    schemas = json_schemas()
    messages = {
        _message_name(t): {
            "name": tag_of(t),
            "title": t.__name__,
            "summary": (t.__doc__ or "").strip().splitlines()[0] if t.__doc__ else tag_of(t),
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{t.__name__}"},
        }
        for t in _ALL
    }
    for t in _ALL:
        if t not in LIVE_TYPES:  # ephemeral messages are not deduplicated: no Nats-Msg-Id
            messages[_message_name(t)]["headers"] = {
                "type": "object",
                "properties": {"Nats-Msg-Id": {"type": "string", "description": "equals event_id"}},
            }
    debate_events = {
        tag_of(t).split(".", 1)[1]: _channel(
            f"{PREFIX}.evt.debate.{{debate_id}}.{tag_of(t).split('.', 1)[1]}",
            f"Debate event `{tag_of(t)}`; per-debate `seq` is contiguous from 1.",
            (t,),
        )
        for t in DEBATE_EVENT_TYPES
    }
    agent_events = {
        "agent_" + tag_of(t).split(".", 1)[1]: _channel(
            f"{PREFIX}.evt.agent.{{debate_id}}.{tag_of(t).split('.', 1)[1]}",
            f"Agent-runner result `{tag_of(t)}`.",
            (t,),
        )
        for t in AGENT_EVENT_TYPES
    }
    channels: dict[str, Any] = {
        **debate_events,
        **agent_events,
        "agent_breaker_changed": _channel(
            f"{PREFIX}.evt.agent.breaker.{{agent}}",
            "An agent's circuit breaker changed state (closed, open, half_open).",
            (AgentBreakerChanged,),
        ),
        "agent_token_delta": _channel(
            f"{PREFIX}.live.debate.{{debate_id}}.tokens",
            "Core NATS, not JetStream: coalesced pieces of a running turn's answer "
            "(ephemeral, never stored; the stored turn event holds the final text).",
            (TokenDelta,),
        ),
        "security_event": _channel(
            f"{PREFIX}.evt.security.{{area}}.{{verb}}",
            "A security-relevant fact (login, token revoked, admin action...), recorded by "
            "the audit service in its hash-chained audit_log; `action` is `<area>.<verb>`.",
            (SecurityEvent,),
        ),
        "start_debate": _channel(START_DEBATE, "Start a debate (work queue).", (StartDebate,)),
        "cancel_debate": _channel(CANCEL_DEBATE, "Cancel a debate.", (CancelDebate,)),
        "run_turn": _channel(RUN_TURN, "Run one agent turn (work queue).", (RunTurn,)),
    }
    for name, channel in channels.items():
        if "{debate_id}" in channel["address"]:
            channel["parameters"] = {"debate_id": {"description": "Debate UUID"}}
        if "{agent}" in channel["address"]:
            channel["parameters"] = {"agent": {"description": "Agent name"}}
        if "{area}" in channel["address"]:
            channel["parameters"] = {
                "area": {"description": "What it concerns: auth, token, api_key, admin..."},
                "verb": {"description": "What happened: login, revoke, request..."},
            }
        channel.setdefault("title", name)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Aragora bus",
            "version": version,
            "description": (
                "Subjects, streams and messages of Aragora. Messages are JSON; `type` is the "
                f"stable tag. Contracts schema version {SCHEMA_VERSION}. Subscribe to "
                f"`{PREFIX}.evt.debate.>` on stream ARAGORA_EVENTS to follow every debate."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": {
            f"receive_{name}": {"action": "receive", "channel": {"$ref": f"#/channels/{name}"}}
            for name in channels
        },
        "components": {"messages": messages, "schemas": schemas},
    }
