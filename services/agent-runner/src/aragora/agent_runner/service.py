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

Fallback: when an agent's breaker is open or its provider answers that the quota or credit
is exhausted (``quota``), the turn goes to the agent's fallback chain
(``AgentRegistry.fallback_chain``: its own ``fallback`` list, else ARAGORA_FALLBACK_AGENTS,
by default ``openrouter`` when registered), in order, each behind its own breaker and within
the same turn deadline. A substitute's answer is reported for the original agent with
``served_by`` and ``fallback_reason`` set; if every substitute fails, the original failure
stands, its detail naming what each substitute answered. Nothing is dropped silently.

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
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from aragora.agent_runner import breaker
from aragora.agent_runner.providers import LLMProvider, ProviderError, build_provider
from aragora.agent_runner.streaming import DeltaCoalescer
from aragora.contracts import codec, subjects
from aragora.contracts.messages import AgentTurnFailed, AgentTurnSucceeded, RunTurn, TokenDelta
from aragora.runtime import bus, pricing, tracing
from aragora.runtime.agents import AgentRegistry
from aragora.runtime.breakers import BreakerStore, KVBreakerStore, MemoryBreakerStore
from aragora.runtime.logs import correlation_id_var, debate_id_var
from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.agent")


MAX_FAILURE_DETAIL = 1000


def result_id(turn_id: str) -> str:
    return str(uuid.uuid5(uuid.UUID(turn_id), "result"))


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What every try at one turn shares: the command, the result envelope, the deadline
    (event-loop clock), the start (monotonic) and the live token stream, if any."""

    command: RunTurn
    envelope: dict[str, object]
    deadline: float
    started: float
    stream: DeltaCoalescer | None

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)


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
        # Agents whose breaker was closed with no failures when last admitted: recording a
        # success there changes nothing unless another replica failed meanwhile, so it
        # runs beside the result's publish instead of before it.
        self._clean: dict[str, bool] = {}
        self._background: set[asyncio.Task[None]] = set()

    def _policy(self, agent: str) -> breaker.BreakerPolicy:
        if agent not in self._policies:
            self._policies[agent] = breaker.policy_for(breaker.vendor(self.registry.get(agent)))
        return self._policies[agent]

    async def _admit(self, agent: str) -> str | None:
        """None if the call may go ahead, else why not (the failed turn's detail)."""
        policy = self._policy(agent)
        decision: list[bool] = []

        def change(state: breaker.BreakerState) -> breaker.BreakerState:
            decision.clear()
            allowed, new = breaker.allow(state, policy, self.clock())
            decision.append(allowed)
            self._clean[agent] = state.state == "closed" and state.consecutive_failures == 0
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
        if self._provider(command.agent) is None:
            return AgentTurnFailed(
                **envelope,  # type: ignore[arg-type]
                reason="unknown_agent",
                detail=f"agent {command.agent!r} is not in this runner's registry",
            )
        started = time.monotonic()
        deadline = asyncio.get_running_loop().time() + command.timeout_seconds
        stream = DeltaCoalescer(command, self._publish_delta) if self.live is not None else None
        attempt = _Attempt(command, envelope, deadline, started, stream)
        try:
            result, why = await self._attempt(command.agent, attempt)
            if why is None:
                return result
            return await self._fall_back(command.agent, attempt, result, why)
        finally:
            if stream is not None:
                await stream.finish()  # the done delta goes out before the result event

    async def _fall_back(
        self,
        agent: str,
        attempt: _Attempt,
        failed: AgentTurnSucceeded | AgentTurnFailed,
        why: str,
    ) -> AgentTurnSucceeded | AgentTurnFailed:
        """Try the agent's fallback chain in order; the first success answers the turn."""
        tried: list[str] = []
        for alternate in self.registry.fallback_chain(agent):
            result, _ = await self._attempt(alternate, attempt)
            if isinstance(result, AgentTurnSucceeded):
                log.warning(
                    "agent turn answered by fallback %s for %s (%s)",
                    alternate,
                    agent,
                    why,
                    extra={"agent": agent, "served_by": alternate},
                )
                return msgspec.structs.replace(result, served_by=alternate, fallback_reason=why)
            tried.append(f"{alternate}: {result.reason}: {result.detail}")
        if not tried or not isinstance(failed, AgentTurnFailed):
            return failed
        detail = f"{failed.detail}; fallback failed too ({'; '.join(tried)})"
        return msgspec.structs.replace(failed, detail=detail[:MAX_FAILURE_DETAIL])

    async def _attempt(
        self, agent: str, attempt: _Attempt
    ) -> tuple[AgentTurnSucceeded | AgentTurnFailed, str | None]:
        """One agent's try at the turn, and why to fall back (None: the result stands)."""
        provider = self._provider(agent)
        if provider is None:
            failed = AgentTurnFailed(
                **attempt.envelope,  # type: ignore[arg-type]
                reason="unknown_agent",
                detail=f"agent {agent!r} is not in this runner's registry",
            )
            return failed, None
        refused = await self._admit(agent)
        if refused is not None:
            failed = AgentTurnFailed(
                **attempt.envelope,  # type: ignore[arg-type]
                reason="provider_error",
                detail=refused,
            )
            return failed, refused
        result = await self._call(agent, provider, attempt)
        if isinstance(result, AgentTurnFailed) and result.reason == "quota":
            return result, f"{agent} is out of quota: {result.detail}"
        return result, None

    async def _call(
        self, agent: str, provider: LLMProvider, attempt: _Attempt
    ) -> AgentTurnSucceeded | AgentTurnFailed:
        command, envelope, stream = attempt.command, attempt.envelope, attempt.stream
        try:
            async with asyncio.timeout_at(attempt.deadline):
                if stream is None:
                    output = await provider.run_turn(command, deadline=attempt.deadline)
                else:
                    output = await provider.run_turn(
                        command, deadline=attempt.deadline, on_delta=stream.add
                    )
        except TimeoutError:
            await self._record(agent, ok=False)
            return AgentTurnFailed(
                **envelope,  # type: ignore[arg-type]
                reason="timeout",
                detail=f"no answer within {command.timeout_seconds:g}s",
                latency_ms=attempt.elapsed_ms(),
            )
        except ProviderError as exc:
            if exc.reason != "unknown_agent":
                await self._record(agent, ok=False)
            return AgentTurnFailed(
                **envelope,  # type: ignore[arg-type]
                reason=exc.reason,
                detail=exc.detail,
                latency_ms=attempt.elapsed_ms(),
            )
        if self._clean.get(agent):
            task = asyncio.create_task(self._record(agent, ok=True))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            await self._record(agent, ok=True)
        model = output.model
        return AgentTurnSucceeded(
            **envelope,  # type: ignore[arg-type]
            content=output.content,
            vote=output.vote,
            latency_ms=attempt.elapsed_ms(),
            provider=provider.kind,
            model=model,
            prompt_tokens=output.prompt_tokens,
            completion_tokens=output.completion_tokens,
            cost_usd=pricing.turn_cost(
                self.registry.get(agent), model, output.prompt_tokens, output.completion_tokens
            ),
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
        tracing.annotate(debate_id=command.debate_id, agent=command.agent, phase=command.phase)
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
                "served_by": getattr(result, "served_by", ""),
            },
        )

    async def aclose(self) -> None:
        await asyncio.gather(*self._background, return_exceptions=True)
        for provider in self._providers.values():
            await provider.aclose()
