"""The orchestrator's application service: load state, decide, append, wake the relay.

Handlers for the bus live here (thin: decode, delegate to the pure rules). Per-debate
locks serialise decisions for one debate inside this process; the store's per-seq
uniqueness catches a concurrent writer elsewhere (then: re-read and decide again).
Debates beyond ARAGORA_MAX_CONCURRENT_DEBATES wait in a FIFO queue (``debate.queued``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from nats.aio.msg import Msg

from aragora.contracts import codec, subjects
from aragora.contracts.messages import (
    AgentTurnFailed,
    AgentTurnSucceeded,
    CancelDebate,
    DebateCompleted,
    DebateEvent,
    RunTurn,
    StartDebate,
)
from aragora.orchestrator import domain
from aragora.orchestrator import ratings as elo
from aragora.orchestrator.domain import Ctx, DebateState, Decision
from aragora.orchestrator.similarity import available_method
from aragora.orchestrator.store import ConcurrencyError, EventStore
from aragora.runtime import tracing
from aragora.runtime.bus import Poison, Transient
from aragora.runtime.logs import correlation_id_var, debate_id_var
from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.debate.orchestrator")
Decide = Callable[[DebateState | None, Ctx], Decision]


def new_id() -> str:
    return str(uuid.uuid4())


class _ResultBatch:
    """Turn results of one debate waiting for the same append (see handle_agent_event)."""

    def __init__(self) -> None:
        self.results: list[AgentTurnSucceeded | AgentTurnFailed] = []
        self.done = False
        self.error: Exception | None = None

    def decide(self, state: DebateState | None, ctx: Ctx) -> Decision:
        """Every result in order, each decided on the state the ones before it leave."""
        if state is None:
            return domain.NOTHING  # results for a debate this store never had
        events: list[DebateEvent] = []
        commands: list[RunTurn] = []
        for result in self.results:
            decision = domain.decide_turn_result(state, result, ctx)
            for event in decision.events:
                state = domain.evolve(state, event)
            events += decision.events
            commands += decision.commands
        return Decision(events=events, commands=commands)


class DebateService:
    def __init__(
        self,
        store: EventStore,
        settings: Settings,
        on_append: Callable[[], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.settings = settings
        self.on_append = on_append
        self.clock = clock
        self.active: dict[str, DebateState] = {}
        self.queue: list[str] = []
        self.ratings = elo.Ratings()
        self.similarity_method = available_method()
        self._locks: dict[str, asyncio.Lock] = {}
        self._results: dict[str, _ResultBatch] = {}

    def ctx(self) -> Ctx:
        return Ctx(
            now=self.clock(),
            ids=new_id,
            ratings=self.ratings,
            similarity_method=self.similarity_method,
        )

    def _lock(self, debate_id: str) -> asyncio.Lock:
        return self._locks.setdefault(debate_id, asyncio.Lock())

    @property
    def running(self) -> int:
        return sum(1 for s in self.active.values() if not s.queued)

    async def recover(self) -> int:
        """Rebuild ratings and load unfinished debates (deadlines, late results, queue)."""
        for event in await asyncio.to_thread(self.store.completed_debates):
            self.ratings = self.ratings.apply(event.ratings)
        ids = await asyncio.to_thread(self.store.active_debate_ids)
        for debate_id in ids:
            state = await self._load(debate_id)
            if state is not None and not state.is_over:
                self.active[debate_id] = state
                if state.queued:
                    self.queue.append(debate_id)
        log.info(
            "recovered unfinished debates",
            extra={"count": len(self.active), "queued": len(self.queue)},
        )
        await self._dequeue()
        return len(self.active)

    async def _load(self, debate_id: str) -> DebateState | None:
        events = await asyncio.to_thread(self.store.load, debate_id)
        return domain.replay(events)

    async def _state(self, debate_id: str) -> DebateState | None:
        return self.active.get(debate_id) or await self._load(debate_id)

    async def _commit(self, debate_id: str, decide: Decide) -> DebateState | None:
        """Decide on the current state and append; on a concurrent write, re-read and retry."""
        for attempt in range(3):
            state = await self._state(debate_id) if attempt == 0 else await self._load(debate_id)
            decision = decide(state, self.ctx())
            if not decision.events:
                return state
            try:
                await asyncio.to_thread(self.store.append, decision.events, decision.commands)
            except ConcurrencyError:
                self.active.pop(debate_id, None)
                log.info("concurrent append; deciding again", extra={"debate_id": debate_id})
                continue
            new_state = state
            for event in decision.events:
                new_state = domain.evolve(new_state, event)
            assert new_state is not None
            self.on_append()
            if new_state.terminal is not None:
                self._finished(new_state)
            else:
                self.active[debate_id] = new_state
            return new_state
        raise ConcurrencyError(f"debate {debate_id}: gave up after repeated conflicts")

    def _finished(self, state: DebateState) -> None:
        self.active.pop(state.debate_id, None)
        self._locks.pop(state.debate_id, None)
        if state.debate_id in self.queue:
            self.queue.remove(state.debate_id)
        if isinstance(state.terminal, DebateCompleted):
            self.ratings = self.ratings.apply(state.terminal.ratings)
        log.info(
            "debate_end",
            extra={"debate_id": state.debate_id, "status": state.terminal.status},  # type: ignore[union-attr]
        )
        asyncio.get_running_loop().create_task(self._dequeue())

    async def _dequeue(self) -> None:
        """Start queued debates while there is capacity, oldest first."""
        while self.queue and self.running < self.settings.max_concurrent_debates:
            debate_id = self.queue.pop(0)
            async with self._lock(debate_id):
                await self._commit(
                    debate_id, lambda s, ctx: domain.decide_dequeue(s, ctx) if s else domain.NOTHING
                )

    async def start(self, command: StartDebate) -> None:
        debate_id_var.set(command.debate_id)
        correlation_id_var.set(command.correlation_id)
        tracing.remember(command.debate_id)  # the relay publishes this debate on its trace
        position = (
            len(self.queue) + 1
            if self.running >= self.settings.max_concurrent_debates or self.queue
            else 0
        )

        def decide(state: DebateState | None, ctx: Ctx) -> Decision:
            if state is not None:  # redelivered command: the debate exists already
                return domain.NOTHING
            return domain.decide_start(command, ctx, queue_position=position)

        async with self._lock(command.debate_id):
            state = await self._commit(command.debate_id, decide)
        if state is not None and state.queued and command.debate_id not in self.queue:
            self.queue.append(command.debate_id)
        log.info(
            "debate_start",
            extra={
                "debate_id": command.debate_id,
                "agents": command.agents,
                "domain": command.domain,
                "queued": position,
            },
        )

    async def cancel(self, command: CancelDebate) -> None:
        debate_id_var.set(command.debate_id)
        correlation_id_var.set(command.correlation_id)

        def decide(state: DebateState | None, ctx: Ctx) -> Decision:
            if state is None:
                return domain.NOTHING
            return domain.decide_cancel(state, ctx, command.reason, command.event_id)

        async with self._lock(command.debate_id):
            await self._commit(command.debate_id, decide)

    async def handle_command(self, msg: Msg) -> None:
        try:
            command = codec.decode_command(msg.data)
        except codec.DecodeError as exc:
            raise Poison(f"undecodable command: {exc}") from None
        if isinstance(command, StartDebate):
            await self.start(command)
        elif isinstance(command, CancelDebate):
            await self.cancel(command)
        else:
            raise Poison(f"orchestrator cannot handle {type(command).__name__}")

    async def handle_agent_event(self, msg: Msg) -> None:
        if subjects.is_breaker_subject(getattr(msg, "subject", "") or ""):
            return  # circuit-breaker news (aragora.evt.agent.breaker.<agent>), not a turn result
        try:
            result = codec.decode_agent_event(msg.data)
        except codec.DecodeError as exc:
            raise Poison(f"undecodable agent event: {exc}") from None
        debate_id_var.set(result.debate_id)
        correlation_id_var.set(result.correlation_id)
        tracing.remember(result.debate_id)
        # Group commit: results of one debate that arrive while an append for it is under
        # way wait on its lock together; the first of them to get it decides them all, in
        # arrival order, and stores them in one append. Each handler returns (and its
        # message is acked) only once its own result is stored.
        batch = self._results.get(result.debate_id)
        if batch is None:
            batch = self._results[result.debate_id] = _ResultBatch()
        batch.results.append(result)
        async with self._lock(result.debate_id):
            if batch.error is not None:  # stored by nobody: this message is redelivered
                raise Transient(f"grouped append failed: {batch.error}")
            if batch.done:
                return
            if self._results.get(result.debate_id) is batch:
                del self._results[result.debate_id]
            try:
                await self._commit(result.debate_id, batch.decide)
            except Exception as exc:
                batch.error = exc
                raise
            batch.done = True

    async def check_deadlines(self) -> None:
        for debate_id in list(self.active):

            def decide(state: DebateState | None, ctx: Ctx) -> Decision:
                return domain.decide_deadlines(state, ctx) if state else domain.NOTHING

            async with self._lock(debate_id):
                await self._commit(debate_id, decide)

    async def run_deadlines(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        while not stop.is_set():
            try:
                await self.check_deadlines()
            except Exception:
                log.exception("deadline check failed")
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass
