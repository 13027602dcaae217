"""Per-agent circuit-breaker state shared by every replica through NATS KV.

The bucket ``ARAGORA_BREAKERS`` (``aragora.contracts.subjects.BREAKERS_BUCKET``) holds one
key per agent (its name as a subject token) whose value is a :class:`BreakerState` as JSON.
Every change is a read-modify-write with optimistic concurrency: ``kv.update`` with the
revision that was read, retried on ``KeyWrongLastSequenceError``; so agent-runner replicas
share one breaker and the gateway's reset is seen by all of them. A change of
``state`` publishes :class:`~aragora.contracts.messages.AgentBreakerChanged` on
``aragora.evt.agent.breaker.<agent>``.

The transitions themselves are pure functions in ``aragora.agent_runner.breaker``; this
module only stores the value (the gateway reads and resets it without the runner's code).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

import msgspec
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from aragora.contracts import codec
from aragora.contracts.messages import AgentBreakerChanged, BreakerStateName
from aragora.contracts.subjects import (
    BREAKERS_BUCKET,
    EVENTS_STREAM,
    breaker_event_subject,
    subject_token,
)

log = logging.getLogger("aragora.breakers")

_WRONG_LAST_SEQUENCE = 10071  # JetStream's err_code for a failed optimistic update


class BreakerState(msgspec.Struct, frozen=True, kw_only=True):
    """One agent's breaker. Times are Unix seconds; ``open_until`` only while open."""

    state: BreakerStateName = "closed"
    consecutive_failures: int = 0
    successes: int = 0
    opened_at: float | None = None
    open_until: float | None = None
    half_open_in_flight: int = 0
    updated_at: float = 0.0


CLOSED = BreakerState()
_decoder = msgspec.json.Decoder(BreakerState)


def _iso(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def breaker_view(agent: str, state: BreakerState) -> dict[str, object]:
    """The state as the API shows it (ISO times)."""
    return {
        "agent": agent,
        "state": state.state,
        "consecutive_failures": state.consecutive_failures,
        "successes": state.successes,
        "half_open_in_flight": state.half_open_in_flight,
        "opened_at": _iso(state.opened_at),
        "open_until": _iso(state.open_until),
        "updated_at": _iso(state.updated_at) if state.updated_at else None,
    }


Change = Callable[[BreakerState], BreakerState]


class BreakerStore(Protocol):
    async def get(self, agent: str) -> BreakerState: ...

    async def all(self) -> dict[str, BreakerState]: ...

    async def update(
        self, agent: str, change: Change, *, reason: str = ""
    ) -> tuple[BreakerState, BreakerState]:
        """Apply ``change`` atomically; returns (old, new). ``change`` may run several times."""
        ...


class MemoryBreakerStore:
    """In-process store (one runner, no bus: unit tests and direct ``run_turn`` calls)."""

    def __init__(self) -> None:
        self.states: dict[str, BreakerState] = {}

    async def get(self, agent: str) -> BreakerState:
        return self.states.get(subject_token(agent), CLOSED)

    async def all(self) -> dict[str, BreakerState]:
        return dict(self.states)

    async def update(
        self, agent: str, change: Change, *, reason: str = ""
    ) -> tuple[BreakerState, BreakerState]:
        old = await self.get(agent)
        new = change(old)
        if new != old:
            self.states[subject_token(agent)] = new
        return old, new


class KVBreakerStore:
    """The shared store: bucket ``ARAGORA_BREAKERS``, created on first use."""

    def __init__(self, js: JetStreamContext, *, publish_events: bool = True) -> None:
        self.js = js
        self.publish_events = publish_events
        self._kv: KeyValue | None = None
        self._lock = asyncio.Lock()

    async def kv(self) -> KeyValue:
        if self._kv is None:
            async with self._lock:
                if self._kv is None:
                    try:
                        self._kv = await self.js.key_value(BREAKERS_BUCKET)
                    except nats.js.errors.BucketNotFoundError:
                        self._kv = await self.js.create_key_value(
                            KeyValueConfig(
                                bucket=BREAKERS_BUCKET,
                                description="Per-agent circuit-breaker state",
                                history=1,
                                storage=StorageType.FILE,
                                replicas=await self._replicas(),
                            )
                        )
        return self._kv

    async def _replicas(self) -> int:
        """As many replicas as the events stream (ARAGORA_STREAM_REPLICAS made it)."""
        try:
            info = await self.js.stream_info(EVENTS_STREAM.name)
        except Exception:
            return 1
        return max(info.config.num_replicas or 1, 1)

    async def _read(self, key: str) -> tuple[BreakerState, int | None]:
        kv = await self.kv()
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return CLOSED, None
        if not entry.value:
            return CLOSED, entry.revision
        try:
            return _decoder.decode(entry.value), entry.revision
        except msgspec.DecodeError:
            log.warning("breaker %s: undecodable value; treating it as closed", key)
            return CLOSED, entry.revision

    async def get(self, agent: str) -> BreakerState:
        return (await self._read(subject_token(agent)))[0]

    async def all(self) -> dict[str, BreakerState]:
        kv = await self.kv()
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return {}
        return {key: (await self._read(key))[0] for key in keys}

    async def update(
        self, agent: str, change: Change, *, reason: str = ""
    ) -> tuple[BreakerState, BreakerState]:
        key = subject_token(agent)
        kv = await self.kv()
        for _ in range(100):
            old, revision = await self._read(key)
            new = change(old)
            if new == old:
                return old, new
            data = msgspec.json.encode(new)
            try:
                if revision is None:
                    await kv.create(key, data)
                else:
                    await kv.update(key, data, last=revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                continue  # another replica changed it: read again and re-decide
            except nats.js.errors.APIError as exc:
                if exc.err_code == _WRONG_LAST_SEQUENCE:
                    continue
                raise
            if new.state != old.state and self.publish_events:
                await self._publish(agent, old, new, reason)
            return old, new
        raise RuntimeError(f"breaker {agent}: too much contention")

    async def _publish(self, agent: str, old: BreakerState, new: BreakerState, reason: str) -> None:
        event = AgentBreakerChanged(
            event_id=str(uuid.uuid4()),
            occurred_at=datetime.now(UTC),
            correlation_id=f"breaker-{subject_token(agent)}",
            agent=agent,
            state=new.state,
            previous=old.state,
            consecutive_failures=new.consecutive_failures,
            opened_at=_iso(new.opened_at),
            open_until=_iso(new.open_until),
            reason=reason,
        )
        log.warning(
            "circuit_breaker %s: %s -> %s",
            agent,
            old.state,
            new.state,
            extra={"agent": agent, "reason": reason},
        )
        with contextlib.suppress(Exception):  # the KV value is the truth; the event is news
            await self.js.publish(
                breaker_event_subject(agent),
                codec.encode(event),
                headers={"Nats-Msg-Id": event.event_id},
                timeout=2.0,
            )


def reset_state(now: float | None = None) -> BreakerState:
    """A closed breaker with no history, as written by an operator's reset."""
    return BreakerState(updated_at=time.time() if now is None else now)
