"""Recent errors across the services, for ``GET /api/system/errors?limit=``.

Sources, each an immutable fact with its own id (so every gateway replica may record the
same one; the first insert wins and the rest are ignored):

* failed turns and failed debates (``debate.turn_failed``, ``debate.failed``), recorded by
  the projection in the same transaction as the event (rebuilt with it);
* circuit breakers opening (``agent.breaker_changed`` to ``open``) and messages a consumer
  gave up on (``aragora.evt.deadletter.<consumer>``), seen on the bus by the gateway;
* the gateway's own unhandled errors (HTTP 500), with the request's correlation id.

Details are the services' own safe texts (provider errors are redacted at the source);
nothing here carries a credential.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import get
from litestar.datastructures import State
from litestar.params import FromQuery
from nats.aio.msg import Msg

from aragora.contracts import codec
from aragora.contracts.messages import AgentBreakerChanged, DebateFailed, TurnFailed
from aragora.runtime.bus import DeadLetter

log = logging.getLogger("aragora.gateway.errors")

MAX_LIMIT = 500
MAX_DETAIL = 500

DDL = [
    """CREATE TABLE IF NOT EXISTS gw_errors (
        id TEXT PRIMARY KEY,
        occurred_at TEXT NOT NULL,
        service TEXT NOT NULL,
        kind TEXT NOT NULL,
        debate_id TEXT,
        agent TEXT,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL,
        correlation_id TEXT)""",
    "CREATE INDEX IF NOT EXISTS gw_errors_time ON gw_errors (occurred_at)",
]


def record(cur: Any, entry: dict[str, Any]) -> None:
    cur.execute(
        "INSERT INTO gw_errors (id, occurred_at, service, kind, debate_id, agent, reason, "
        "detail, correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING",
        (
            entry["id"],
            entry["occurred_at"],
            entry["service"],
            entry["kind"],
            entry.get("debate_id"),
            entry.get("agent"),
            entry["reason"],
            str(entry.get("detail", ""))[:MAX_DETAIL],
            entry.get("correlation_id"),
        ),
    )


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def from_event(event: TurnFailed | DebateFailed) -> dict[str, Any]:
    """The error entry of a failed turn (agent-runner) or a failed debate (orchestrator)."""
    if isinstance(event, TurnFailed):
        return {
            "id": event.event_id,
            "occurred_at": _iso(event.occurred_at),
            "service": "agent-runner",
            "kind": "turn_failed",
            "debate_id": event.debate_id,
            "agent": event.agent,
            "reason": event.reason,
            "detail": f"round {event.round} {event.phase}: {event.detail}",
            "correlation_id": event.correlation_id,
        }
    return {
        "id": event.event_id,
        "occurred_at": _iso(event.occurred_at),
        "service": "orchestrator",
        "kind": f"debate_{event.status}",
        "debate_id": event.debate_id,
        "agent": None,
        "reason": event.status,
        "detail": event.reason,
        "correlation_id": event.correlation_id,
    }


def from_bus(msg: Msg) -> dict[str, Any] | None:
    """An entry for a breaker that opened or a dead-lettered message; None otherwise."""
    if ".deadletter." in msg.subject:
        try:
            letter = msgspec.json.decode(msg.data, type=DeadLetter)
        except msgspec.DecodeError:
            return None
        return {
            "id": f"dlq:{letter.consumer}:{letter.stream_seq}",  # the relay's own msg id
            "occurred_at": _iso(datetime.now(UTC)),
            "service": letter.consumer,
            "kind": "dead_letter",
            "reason": letter.reason,
            "detail": f"{letter.subject} (stream seq {letter.stream_seq}, "
            f"{letter.deliveries} deliveries)",
        }
    try:
        event = codec.decode_breaker_event(msg.data)
    except codec.DecodeError:
        return None
    if not isinstance(event, AgentBreakerChanged) or event.state != "open":
        return None
    return {
        "id": event.event_id,
        "occurred_at": _iso(event.occurred_at),
        "service": "agent-runner",
        "kind": "circuit_breaker_open",
        "agent": event.agent,
        "reason": event.reason or "consecutive failures",
        "detail": f"{event.agent} open after {event.consecutive_failures} failures"
        + (f" until {_iso(event.open_until)}" if event.open_until else ""),
        "correlation_id": event.correlation_id,
    }


def http_error(path: str, exc: BaseException, correlation_id: str | None) -> dict[str, Any]:
    return {
        "id": f"http:{correlation_id}:{datetime.now(UTC).timestamp():.6f}",
        "occurred_at": _iso(datetime.now(UTC)),
        "service": "gateway",
        "kind": "http_500",
        "reason": type(exc).__name__,
        "detail": f"unhandled error on {path}",
        "correlation_id": correlation_id,
    }


@get("/api/system/errors", tags=["system"])
async def system_errors(
    state: State,
    limit: FromQuery[int] = 50,
    service: FromQuery[str | None] = None,
    debate_id: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """The most recent errors across the services, newest first (admin)."""
    limit = max(1, min(limit, MAX_LIMIT))
    where, params = [], []
    if service:
        where.append("service = ?")
        params.append(service)
    if debate_id:
        where.append("debate_id = ?")
        params.append(debate_id)
    clause = f"WHERE {' AND '.join(where)} " if where else ""

    def work(cur: Any) -> list[dict[str, Any]]:
        cur.execute(
            "SELECT id, occurred_at, service, kind, debate_id, agent, reason, detail, "
            f"correlation_id FROM gw_errors {clause}ORDER BY occurred_at DESC LIMIT ?",
            (*params, limit),
        )
        names = (
            "id",
            "occurred_at",
            "service",
            "kind",
            "debate_id",
            "agent",
            "reason",
            "detail",
            "correlation_id",
        )
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    errors = await state.deps.readmodel.run(work)
    return {"errors": errors, "count": len(errors), "limit": limit}


def bus_recorder(readmodel: Any) -> Any:
    """The core NATS callback recording breaker openings and dead letters."""

    async def on_message(msg: Msg) -> None:
        entry = from_bus(msg)
        if entry is None:
            return
        try:
            await readmodel.run(lambda cur: record(cur, entry))
        except Exception as exc:  # the database may be down: this is best effort
            log.warning("could not record an error entry: %s", type(exc).__name__)

    return on_message
