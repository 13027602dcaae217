"""The event store of record, on eventsourcing's recorders (SQLite or PostgreSQL).

Debate events are stored under the debate's UUID with ``originator_version = seq``, so
the store itself refuses a second event at the same ``seq`` (optimistic concurrency).
Commands the orchestrator issues (``RunTurn``) are stored in the same transaction under
the turn's UUID: the store's notification log is the outbox for events *and* commands,
and the relay publishes both. The relay's position is an eventsourcing tracking record.

eventsourcing is synchronous: every method here blocks; call them from a worker thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse
from uuid import UUID

from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    ProcessRecorder,
    StoredEvent,
    Tracking,
)
from eventsourcing.utils import Environment

from aragora.contracts import codec
from aragora.contracts.messages import (
    Command,
    DebateCompleted,
    DebateCreated,
    DebateEvent,
    DebateFailed,
    tag_of,
)
from aragora.orchestrator.metrics import store_append_failures, store_append_seconds
from aragora.runtime import tracing
from aragora.runtime.settings import Settings

RELAY = "outbox-relay"
# libpq's limit on opening one PostgreSQL connection (TCP connect plus start-up/auth).
CONNECT_TIMEOUT_SECONDS = 5
_TERMINAL_TOPICS = [tag_of(DebateCompleted), tag_of(DebateFailed)]


class ConcurrencyError(Exception):
    """Another writer appended to this debate first; re-read and decide again."""


@dataclass(frozen=True)
class OutboxEntry:
    position: int
    topic: str
    payload: bytes


class EventStore(Protocol):
    """Port of the orchestrator's event store."""

    def append(self, events: Sequence[DebateEvent], commands: Sequence[Command]) -> int: ...
    def load(self, debate_id: str) -> list[DebateEvent]: ...
    def outbox(self, after: int, limit: int) -> list[OutboxEntry]: ...
    def relay_position(self) -> int: ...
    def set_relay_position(self, position: int) -> None: ...
    def active_debate_ids(self) -> list[str]: ...
    def completed_debates(self) -> list[DebateCompleted]: ...
    def close(self) -> None: ...


def eventsourcing_env(settings: Settings) -> dict[str, str]:
    """eventsourcing's own settings derived from ours (PostgreSQL URL or SQLite file)."""
    if settings.uses_postgres:
        url = urlparse(settings.database_url)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_POOL_SIZE": str(settings.db_pool_size),
            "POSTGRES_MAX_OVERFLOW": str(settings.db_max_overflow),
            "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS),
            "POSTGRES_PRE_PING": "y",
        }
        if settings.database_schema:
            env["POSTGRES_SCHEMA"] = settings.database_schema
        return env
    path = (
        Path(settings.database_url.removeprefix("sqlite:///"))
        if settings.database_url
        else settings.data_dir / "events.db"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "SQLITE_LOCK_TIMEOUT": "10",
    }


class RecorderEventStore:
    """:class:`EventStore` on an eventsourcing ProcessRecorder."""

    def __init__(self, settings: Settings) -> None:
        if settings.uses_postgres and settings.database_schema:
            _ensure_schema(settings)
        self._factory: Any = InfrastructureFactory.construct(
            Environment(name="aragora", env=eventsourcing_env(settings))
        )
        if settings.uses_postgres:
            _bound_connection_attempts(self._factory)
        self._recorder: ProcessRecorder = self._factory.process_recorder()
        self._lock = threading.Lock()  # one relay position writer at a time
        self._relay_saved = 0  # the highest position this store has seen saved

    def append(self, events: Sequence[DebateEvent], commands: Sequence[Command]) -> int:
        stored = [
            StoredEvent(
                originator_id=UUID(e.debate_id),
                originator_version=e.seq,
                topic=tag_of(type(e)),
                state=codec.encode(e),
            )
            for e in events
        ] + [
            StoredEvent(
                originator_id=UUID(c.event_id),
                originator_version=1,
                topic=tag_of(type(c)),
                state=codec.encode(c),
            )
            for c in commands
        ]
        started = time.perf_counter()
        try:
            with tracing.span("event_store append", attributes={"events": len(stored)}):
                ids = self._recorder.insert_events(stored)
        except IntegrityError as exc:
            store_append_failures.labels("conflict").inc()
            raise ConcurrencyError(str(exc)) from None
        except Exception:
            store_append_failures.labels("error").inc()
            raise
        store_append_seconds.observe(time.perf_counter() - started)
        return max(ids) if ids else 0

    def load(self, debate_id: str) -> list[DebateEvent]:
        return [
            codec.decode_debate_event(s.state)
            for s in self._recorder.select_events(UUID(debate_id))
        ]

    def outbox(self, after: int, limit: int) -> list[OutboxEntry]:
        notes = self._recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        return [OutboxEntry(position=n.id, topic=n.topic, payload=n.state) for n in notes]

    def relay_position(self) -> int:
        position = self._recorder.max_tracking_id(RELAY) or 0
        with self._lock:
            self._relay_saved = max(self._relay_saved, position)
        return position

    def set_relay_position(self, position: int) -> None:
        """Record ``position``; one that is not past the last one saved is a no-op."""
        with self._lock:
            if position <= self._relay_saved:
                return
            try:
                self._recorder.insert_tracking(Tracking(RELAY, position))
            except IntegrityError:
                pass  # another replica's relay recorded this very position
            self._relay_saved = position

    def active_debate_ids(self) -> list[str]:
        """Debates created and not yet ended, from the notification log."""
        active: dict[str, None] = {}
        after = 0
        topics = [tag_of(DebateCreated), *_TERMINAL_TOPICS]
        while True:
            notes = self._recorder.select_notifications(
                start=after, limit=1000, topics=topics, inclusive_of_start=False
            )
            for n in notes:
                debate_id = str(UUID(str(n.originator_id)))
                if n.topic == tag_of(DebateCreated):
                    active[debate_id] = None
                else:
                    active.pop(debate_id, None)
            if len(notes) < 1000:
                return list(active)
            after = notes[-1].id

    def completed_debates(self) -> list[DebateCompleted]:
        """Every ``debate.completed`` in store order (the ratings projection folds them)."""
        found: list[DebateCompleted] = []
        after = 0
        while True:
            notes = self._recorder.select_notifications(
                start=after, limit=1000, topics=[tag_of(DebateCompleted)], inclusive_of_start=False
            )
            for n in notes:
                event = codec.decode_debate_event(n.state)
                assert isinstance(event, DebateCompleted)
                found.append(event)
            if len(notes) < 1000:
                return found
            after = notes[-1].id

    def close(self) -> None:
        self._factory.close()


def _bound_connection_attempts(factory: Any) -> None:
    """Give the pool's own connection attempts a libpq ``connect_timeout``.

    eventsourcing's POSTGRES_CONNECT_TIMEOUT only bounds the wait for a pooled
    connection; the pool's background workers open connections with no timeout at all.
    During a network partition (or with a hung server) each attempt then blocks forever,
    the pool never refills, and the orchestrator stays stuck after the database is back.
    """
    pool = factory.datastore.pool
    pool.kwargs = {**(pool.kwargs or {}), "connect_timeout": CONNECT_TIMEOUT_SECONDS}


def _ensure_schema(settings: Settings) -> None:
    import psycopg

    with psycopg.connect(
        settings.database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
    ) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.database_schema}"')
