"""Runs agent turns: one RunTurn command in, one result event out.

Competing consumers: every replica pulls from the same durable consumer, so N replicas
share the work. The provider adapter is the single retry owner for its HTTP calls, and
``run_structured`` the single owner of the content re-ask; this layer only bounds the whole
turn by its deadline (which the provider is told, so a re-ask ends before it) and reports
the outcome as a fact.
The result's event id is derived from the turn id, so a re-run after a crash publishes
the same ``Nats-Msg-Id`` and JetStream drops the duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime

import httpx
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from aragora.agent_runner.providers import LLMProvider, ProviderError, build_provider
from aragora.contracts import codec, subjects
from aragora.contracts.messages import AgentTurnFailed, AgentTurnSucceeded, RunTurn
from aragora.runtime import bus
from aragora.runtime.agents import AgentRegistry
from aragora.runtime.logs import correlation_id_var, debate_id_var
from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.agent")


def result_id(turn_id: str) -> str:
    return str(uuid.uuid5(uuid.UUID(turn_id), "result"))


class TurnRunner:
    def __init__(
        self,
        registry: AgentRegistry,
        settings: Settings,
        js: JetStreamContext,
        http: httpx.AsyncClient,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.js = js
        self.http = http
        self._providers: dict[str, LLMProvider] = {}
        self.turns = 0

    def _provider(self, agent: str) -> LLMProvider | None:
        if agent not in self._providers:
            spec = self.registry.get(agent)
            if spec is None:
                return None
            self._providers[agent] = build_provider(spec, self.settings, self.http)
        return self._providers[agent]

    async def run_turn(self, command: RunTurn) -> AgentTurnSucceeded | AgentTurnFailed:
        envelope = {
            "event_id": result_id(command.turn_id),
            "occurred_at": datetime.now(UTC),
            "correlation_id": command.correlation_id,
            "causation_id": command.event_id,
            "debate_id": command.debate_id,
            "turn_id": command.turn_id,
            "agent": command.agent,
        }
        provider = self._provider(command.agent)
        if provider is None:
            return AgentTurnFailed(
                **envelope,  # type: ignore[arg-type]
                reason="unknown_agent",
                detail=f"agent {command.agent!r} is not in this runner's registry",
            )
        started = time.monotonic()
        deadline = asyncio.get_running_loop().time() + command.timeout_seconds
        try:
            async with asyncio.timeout_at(deadline):
                output = await provider.run_turn(command, deadline=deadline)
        except TimeoutError:
            return AgentTurnFailed(
                **envelope,  # type: ignore[arg-type]
                reason="timeout",
                detail=f"no answer within {command.timeout_seconds:g}s",
                latency_ms=int((time.monotonic() - started) * 1000),
            )
        except ProviderError as exc:
            return AgentTurnFailed(
                **envelope,  # type: ignore[arg-type]
                reason=exc.reason,
                detail=exc.detail,
                latency_ms=int((time.monotonic() - started) * 1000),
            )
        return AgentTurnSucceeded(
            **envelope,  # type: ignore[arg-type]
            content=output.content,
            vote=output.vote,
            latency_ms=int((time.monotonic() - started) * 1000),
            provider=provider.kind,
            model=output.model,
            prompt_tokens=output.prompt_tokens,
            completion_tokens=output.completion_tokens,
            critiques=output.critiques,
            continue_debate=output.continue_debate,
            structured=output.structured,
            parse_error=output.parse_error,
            rejected_answers=output.rejected_answers,
        )

    async def handle(self, msg: Msg) -> None:
        try:
            command = codec.decode_command(msg.data)
        except codec.DecodeError as exc:
            raise bus.Poison(f"undecodable command: {exc}") from None
        if not isinstance(command, RunTurn):
            raise bus.Poison(f"agent-runner cannot handle {type(command).__name__}")
        debate_id_var.set(command.debate_id)
        correlation_id_var.set(command.correlation_id)
        result = await self.run_turn(command)
        await bus.publish(
            self.js,
            subjects.agent_event_subject(result),
            codec.encode(result),
            msg_id=result.event_id,
        )
        self.turns += 1
        outcome = "ok" if isinstance(result, AgentTurnSucceeded) else result.reason
        log.info(
            "agent_turn",
            extra={
                "agent": command.agent,
                "phase": command.phase,
                "round": command.round,
                "outcome": outcome,
                "latency_ms": result.latency_ms,
            },
        )

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
