"""Runs agent turns: one RunTurn command in, one result event out.

Competing consumers: every replica pulls from the same durable consumer, so N replicas
share the work. The provider adapter is the single retry owner for its HTTP calls, and
``run_structured`` the single owner of the content re-ask; this layer only bounds the whole
turn by its deadline (which the provider is told, so a re-ask ends before it) and reports
the outcome as a fact.
The result's event id is derived from the turn id, so a re-run after a crash publishes
the same ``Nats-Msg-Id`` and JetStream drops the duplicate.

Each agent has a circuit breaker (``aragora.agent_runner.breaker``) shared by every replica
through NATS KV: an open breaker fails the turn at once (``provider_error``) without calling
the provider; timeouts and provider errors (``rejected`` too) count as failures. A breaker
store that cannot be reached fails open: the turn runs.

With a core NATS connection (``live``), the answer is streamed while the model writes it:
coalesced ``TokenDelta`` messages on ``aragora.live.debate.<id>.tokens`` (ephemeral, never
stored; see ``aragora.agent_runner.streaming``), the last with ``done`` true, published
before the result event, which holds the final text as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from aragora.agent_runner import breaker
from aragora.agent_runner.providers import LLMProvider, ProviderError, build_provider
from aragora.agent_runner.streaming import DeltaCoalescer
from aragora.contracts import codec, subjects
from aragora.contracts.messages import AgentTurnFailed, AgentTurnSucceeded, RunTurn, TokenDelta
from aragora.runtime import bus
from aragora.runtime.agents import AgentRegistry
from aragora.runtime.breakers import BreakerStore, KVBreakerStore, MemoryBreakerStore
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
        breakers: BreakerStore | None = None,
        clock: Callable[[], float] = time.time,
        live: NATS | None = None,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.js = js
        self.http = http
        if breakers is None:
            breakers = KVBreakerStore(js) if js is not None else MemoryBreakerStore()
        self.breakers = breakers
        self.clock = clock
        self.live = live
        self._providers: dict[str, LLMProvider] = {}
        self._policies: dict[str, breaker.BreakerPolicy] = {}
        self.turns = 0

    def _policy(self, agent: str) -> breaker.BreakerPolicy:
        if agent not in self._policies:
            spec = self.registry.get(agent)
            self._policies[agent] = breaker.policy_for(spec.provider if spec else "default")
        return self._policies[agent]

    async def _admit(self, agent: str) -> str | None:
        """None if the call may go ahead, else why not (the failed turn's detail)."""
        policy = self._policy(agent)
        decision: list[bool] = []

        def change(state: breaker.BreakerState) -> breaker.BreakerState:
            decision.clear()
            allowed, new = breaker.allow(state, policy, self.clock())
            decision.append(allowed)
            return new

        try:
            _, new = await self.breakers.update(agent, change, reason="cooldown elapsed")
        except Exception as exc:
            log.warning("circuit breaker %s unavailable (%s): calling anyway", agent, exc)
            return None
        if decision and decision[0]:
            return None
        if new.state == "open" and new.open_until is not None:
            until = datetime.fromtimestamp(new.open_until, UTC).isoformat(timespec="seconds")
            return f"circuit breaker open for {agent} until {until}"
        return f"circuit breaker open for {agent} until a half-open trial call completes"

    async def _record(self, agent: str, ok: bool) -> None:
        policy = self._policy(agent)
        now = self.clock()
        outcome = breaker.on_success if ok else breaker.on_failure
        reason = "recovered" if ok else "consecutive failures"

        def change(state: breaker.BreakerState) -> breaker.BreakerState:
            return outcome(state, policy, now)

        try:
            await self.breakers.update(agent, change, reason=reason)
        except Exception as exc:
            log.warning("circuit breaker %s: could not record the outcome (%s)", agent, exc)

    async def _publish_delta(self, delta: TokenDelta) -> None:
        assert self.live is not None
        subject = subjects.token_delta_subject(delta.debate_id)
        await self.live.publish(subject, codec.encode(delta))

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
        refused = await self._admit(command.agent)
        if refused is not None:
            return AgentTurnFailed(
                **envelope,  # type: ignore[arg-type]
                reason="provider_error",
                detail=refused,
            )
        started = time.monotonic()
        deadline = asyncio.get_running_loop().time() + command.timeout_seconds
        stream = DeltaCoalescer(command, self._publish_delta) if self.live is not None else None
        try:
            return await self._call(provider, command, envelope, deadline, started, stream)
        finally:
            if stream is not None:
                await stream.finish()  # the done delta goes out before the result event

    async def _call(
        self,
        provider: LLMProvider,
        command: RunTurn,
        envelope: dict[str, object],
        deadline: float,
        started: float,
        stream: DeltaCoalescer | None,
    ) -> AgentTurnSucceeded | AgentTurnFailed:
        try:
            async with asyncio.timeout_at(deadline):
                if stream is None:
                    output = await provider.run_turn(command, deadline=deadline)
                else:
                    output = await provider.run_turn(
                        command, deadline=deadline, on_delta=stream.add
                    )
        except TimeoutError:
            await self._record(command.agent, ok=False)
            return AgentTurnFailed(
                **envelope,  # type: ignore[arg-type]
                reason="timeout",
                detail=f"no answer within {command.timeout_seconds:g}s",
                latency_ms=int((time.monotonic() - started) * 1000),
            )
        except ProviderError as exc:
            if exc.reason != "unknown_agent":
                await self._record(command.agent, ok=False)
            return AgentTurnFailed(
                **envelope,  # type: ignore[arg-type]
                reason=exc.reason,
                detail=exc.detail,
                latency_ms=int((time.monotonic() - started) * 1000),
            )
        await self._record(command.agent, ok=True)
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
