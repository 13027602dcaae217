"""Subjects and JetStream streams: the public address space of Aragora.

Facts: ``aragora.evt.<context>.<id>.<event>``; commands: ``aragora.cmd.<context>.<verb>``;
request/reply: ``aragora.rpc.<service>.<verb>``. Other systems subscribe with wildcards such
as ``aragora.evt.debate.>``, so these names are public API and change only additively.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from aragora.contracts.messages import (
    AgentEvent,
    CancelDebate,
    Command,
    DebateEvent,
    RunTurn,
    StartDebate,
    tag_of,
)

PREFIX = "aragora"
DEBATE_EVENTS = f"{PREFIX}.evt.debate.>"
AGENT_EVENTS = f"{PREFIX}.evt.agent.>"
DEAD_LETTERS = f"{PREFIX}.evt.deadletter.>"
START_DEBATE = f"{PREFIX}.cmd.debate.start"
CANCEL_DEBATE = f"{PREFIX}.cmd.debate.cancel"
RUN_TURN = f"{PREFIX}.cmd.agent.run_turn"
DEBATE_COMMANDS = f"{PREFIX}.cmd.debate.>"
AGENT_COMMANDS = f"{PREFIX}.cmd.agent.>"
BREAKER_EVENTS = f"{PREFIX}.evt.agent.breaker.>"
"""Circuit-breaker transitions, ``aragora.evt.agent.breaker.<agent>`` (inside ``AGENT_EVENTS``)."""
LIVE_TOKENS = f"{PREFIX}.live.debate.*.tokens"
"""Core NATS (no stream, never stored): ``TokenDelta`` of every debate's running turns."""
BREAKERS_BUCKET = "ARAGORA_BREAKERS"
"""NATS KV bucket of per-agent circuit-breaker state (key: agent name, value: JSON)."""


def _event_name(message: msgspec.Struct) -> str:
    # "debate.round_started" -> "round_started"
    return tag_of(type(message)).split(".", 1)[1]


def debate_event_subject(event: DebateEvent) -> str:
    """``aragora.evt.debate.<debate_id>.<event>``."""
    return f"{PREFIX}.evt.debate.{event.debate_id}.{_event_name(event)}"


def agent_event_subject(event: AgentEvent) -> str:
    """``aragora.evt.agent.<debate_id>.<event>``."""
    return f"{PREFIX}.evt.agent.{event.debate_id}.{_event_name(event)}"


def token_delta_subject(debate_id: str) -> str:
    """``aragora.live.debate.<debate_id>.tokens`` (core NATS, outside every stream)."""
    return f"{PREFIX}.live.debate.{subject_token(debate_id)}.tokens"


def subject_token(name: str) -> str:
    """``name`` made safe as one subject token and KV key (``.``, spaces, wildcards -> ``_``)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in name) or "_"


def breaker_event_subject(agent: str) -> str:
    """``aragora.evt.agent.breaker.<agent>``."""
    return f"{PREFIX}.evt.agent.breaker.{subject_token(agent)}"


def is_breaker_subject(subject: str) -> bool:
    return subject.startswith(f"{PREFIX}.evt.agent.breaker.")


def command_subject(command: Command) -> str:
    if isinstance(command, StartDebate):
        return START_DEBATE
    if isinstance(command, CancelDebate):
        return CANCEL_DEBATE
    if isinstance(command, RunTurn):
        return RUN_TURN
    raise TypeError(f"no subject for {type(command).__name__}")


def dead_letter_subject(consumer: str) -> str:
    return f"{PREFIX}.evt.deadletter.{consumer}"


class StreamSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A JetStream stream definition, applied by ``aragora.runtime.bus``."""

    name: str
    subjects: list[str]
    retention: Literal["limits", "workqueue"]
    duplicate_window_seconds: float
    description: str


EVENTS_STREAM = StreamSpec(
    name="ARAGORA_EVENTS",
    subjects=[f"{PREFIX}.evt.>"],
    retention="limits",
    # Must outlast the outbox relay's worst restart: a relay that re-publishes after a
    # crash is deduplicated by Nats-Msg-Id only inside this window.
    duplicate_window_seconds=600.0,
    description="Every fact: debate events (from the outbox relay) and agent turn results.",
)
COMMANDS_STREAM = StreamSpec(
    name="ARAGORA_COMMANDS",
    subjects=[f"{PREFIX}.cmd.>"],
    retention="workqueue",
    duplicate_window_seconds=600.0,
    description="Commands; each is removed once its one consumer acks it.",
)
STREAMS: tuple[StreamSpec, ...] = (EVENTS_STREAM, COMMANDS_STREAM)

AGENT_TEST_RPC = f"{PREFIX}.rpc.agent.test"
"""Request/reply: run one agent turn directly (``aragora.contracts.rpc.AgentTestRequest``)."""
AGENT_CONNECTIVITY_RPC = f"{PREFIX}.rpc.agent.connectivity"
"""Request/reply: DNS/TCP/TLS/auth reachability of each configured provider."""
AGENT_RPC_QUEUE = "agent-runner"
"""Queue group of the agent-runners' RPC subscriptions: one replica answers each request."""
RATE_LIMIT_CHECK_RPC = f"{PREFIX}.rpc.ratelimit.check"
"""Request/reply: consume ``cost`` of a caller's budget (``aragora.contracts.ratelimit``)."""
RATE_LIMIT_STATUS_RPC = f"{PREFIX}.rpc.ratelimit.status"
"""Request/reply: a caller's counters and the backend in use, without consuming anything."""
RATE_LIMIT_STATS_RPC = f"{PREFIX}.rpc.ratelimit.stats"
"""Request/reply: top limited keys, hits per class, backend state (admin view)."""
RATE_LIMIT_RPC_QUEUE = "ratelimit"
"""Queue group of the ratelimit services: one replica answers each request."""
