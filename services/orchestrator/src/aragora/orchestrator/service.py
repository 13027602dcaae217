"""The orchestrator's application service: load state, decide, append, wake the relay.

Handlers for the bus live here (thin: decode, delegate to the pure rules). Per-debate
locks serialise decisions for one debate inside this process; the store's per-seq
uniqueness catches a concurrent writer elsewhere (then: re-read and decide again).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from nats.aio.msg import Msg

from aragora.contracts import codec
from aragora.contracts.messages import StartDebate
from aragora.orchestrator import domain
from aragora.orchestrator.domain import DebateState, Decision
from aragora.orchestrator.store import ConcurrencyError, EventStore
from aragora.runtime.bus import Poison
from aragora.runtime.logs import correlation_id_var, debate_id_var
from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.debate.orchestrator")


def new_id() -> str:
    return str(uuid.uuid4())


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
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, debate_id: str) -> asyncio.Lock:
        return self._locks.setdefault(debate_id, asyncio.Lock())

    async def recover(self) -> int:
        """Load every unfinished debate so deadlines and late results apply after a crash."""
        ids = await asyncio.to_thread(self.store.active_debate_ids)
        for debate_id in ids:
            state = await self._load(debate_id)
            if state is not None and not state.is_over:
                self.active[debate_id] = state
        log.info("recovered unfinished debates", extra={"count": len(self.active)})
        return len(self.active)

    async def _load(self, debate_id: str) -> DebateState | None:
        events = await asyncio.to_thread(self.store.load, debate_id)
        return domain.replay(events)

    async def _state(self, debate_id: str) -> DebateState | None:
        return self.active.get(debate_id) or await self._load(debate_id)

    async def _commit(
        self, debate_id: str, decide: Callable[[DebateState | None], Decision]
    ) -> None:
        """Decide on the current state and append; on a concurrent write, re-read once more."""
        for attempt in range(3):
            state = await self._state(debate_id) if attempt == 0 else await self._load(debate_id)
            decision = decide(state)
            if not decision.events:
                return
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
            if new_state.is_over:
                self.active.pop(debate_id, None)
                self._locks.pop(debate_id, None)
                log.info(
                    "debate_end",
                    extra={"debate_id": debate_id, "status": new_state.terminal.status},  # type: ignore[union-attr]
                )
            else:
                self.active[debate_id] = new_state
            self.on_append()
            return
        raise ConcurrencyError(f"debate {debate_id}: gave up after repeated conflicts")

    async def start(self, command: StartDebate) -> None:
        debate_id_var.set(command.debate_id)
        correlation_id_var.set(command.correlation_id)

        def decide(state: DebateState | None) -> Decision:
            if state is not None:  # redelivered command: the debate exists already
                return domain.NOTHING
            return domain.decide_start(
                command, self.clock(), new_id, self.settings.agent_timeout_seconds
            )

        async with self._lock(command.debate_id):
            await self._commit(command.debate_id, decide)
        log.info(
            "debate_start",
            extra={"debate_id": command.debate_id, "agents": command.agents},
        )

    async def handle_command(self, msg: Msg) -> None:
        try:
            command = codec.decode_command(msg.data)
        except codec.DecodeError as exc:
            raise Poison(f"undecodable command: {exc}") from None
        if not isinstance(command, StartDebate):
            raise Poison(f"orchestrator cannot handle {type(command).__name__}")
        await self.start(command)

    async def handle_agent_event(self, msg: Msg) -> None:
        try:
            result = codec.decode_agent_event(msg.data)
        except codec.DecodeError as exc:
            raise Poison(f"undecodable agent event: {exc}") from None
        debate_id_var.set(result.debate_id)
        correlation_id_var.set(result.correlation_id)

        def decide(state: DebateState | None) -> Decision:
            if state is None:
                return domain.NOTHING  # a result for a debate this store never had
            return domain.decide_turn_result(
                state, result, self.clock(), new_id, self.settings.agent_timeout_seconds
            )

        async with self._lock(result.debate_id):
            await self._commit(result.debate_id, decide)

    async def check_deadlines(self) -> None:
        for debate_id in list(self.active):

            def decide(state: DebateState | None) -> Decision:
                if state is None:
                    return domain.NOTHING
                return domain.decide_deadlines(
                    state,
                    self.clock(),
                    new_id,
                    self.settings.agent_timeout_seconds,
                    self.settings.debate_timeout_seconds,
                )

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
