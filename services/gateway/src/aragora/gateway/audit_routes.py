"""``GET /api/admin/audit-log`` and ``GET /api/admin/audit-log/verify`` (admin or owner).

The audit service owns ``audit_log``; the gateway asks it over NATS request/reply
(``aragora.rpc.audit.*``, one replica answers) and answers 503 when none does.

``/api/admin/audit-log?limit=&actor=&action=&outcome=&since=&until=&order=&cursor=``:
newest first by default; ``next_cursor`` continues where the page ended (empty on the last
page). ``/verify`` recomputes the hash chain and names the first row that breaks it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import nats.errors
from litestar import Request, get
from litestar.datastructures import State
from litestar.exceptions import ClientException
from litestar.params import FromQuery

from aragora.contracts.security import (
    AUDIT_QUERY_RPC,
    AUDIT_VERIFY_RPC,
    MAX_QUERY_LIMIT,
    AuditError,
    AuditQuery,
    AuditReply,
    AuditVerifyRequest,
)
from aragora.gateway.deps import Deps
from aragora.gateway.security_events import note

_replies = msgspec.json.Decoder(AuditReply)
QUERY_TIMEOUT = 10.0
VERIFY_TIMEOUT = 60.0  # the whole table is read


async def _ask(deps: Deps, subject: str, request: msgspec.Struct, timeout: float) -> Any:
    if deps.bus is None:
        raise ClientException("the bus is not connected", status_code=503)
    try:
        msg = await deps.bus.nc.request(subject, msgspec.json.encode(request), timeout=timeout)
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
        raise ClientException(
            "the audit service is not answering: is it running (aragora.audit)?",
            status_code=503,
        ) from None
    reply = _replies.decode(msg.data)
    if isinstance(reply, AuditError):
        raise ClientException(reply.detail)
    return reply


def _time(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ClientException(f"{name}: an ISO 8601 time such as 2026-01-15T10:30:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@get("/api/admin/audit-log", tags=["admin"])
async def audit_log(
    request: Request[Any, Any, Any],
    state: State,
    limit: FromQuery[int] = 100,
    actor: FromQuery[str] = "",
    action: FromQuery[str] = "",
    outcome: FromQuery[str] = "",
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    order: FromQuery[str] = "desc",
    cursor: FromQuery[str] = "",
) -> dict[str, Any]:
    """Audit entries, newest first (``order=asc``: oldest first), filtered, paginated."""
    deps: Deps = state.deps
    note(request, "audit.read", target="audit-log", detail={"action_filter": action[:64]})
    if not 1 <= limit <= MAX_QUERY_LIMIT:
        raise ClientException(f"limit: 1 to {MAX_QUERY_LIMIT}")
    if order not in ("asc", "desc"):
        raise ClientException("order: asc or desc")
    query = AuditQuery(
        limit=limit,
        actor=actor,
        action=action,
        outcome=outcome,
        since=_time("since", since),
        until=_time("until", until),
        cursor=cursor,
        order="asc" if order == "asc" else "desc",
    )
    page = await _ask(deps, AUDIT_QUERY_RPC, query, QUERY_TIMEOUT)
    entries = [msgspec.to_builtins(e) for e in page.entries]
    return {"entries": entries, "count": len(entries), "next_cursor": page.next_cursor or None}


@get("/api/admin/audit-log/verify", tags=["admin"])
async def audit_log_verify(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Recompute the chain: ``ok``, rows checked, and the first break (row and why)."""
    deps: Deps = state.deps
    note(request, "audit.verify", target="audit-log")
    reply = await _ask(deps, AUDIT_VERIFY_RPC, AuditVerifyRequest(), VERIFY_TIMEOUT)
    body: dict[str, Any] = msgspec.to_builtins(reply)
    body.pop("type", None)
    return body


ROUTES = [audit_log, audit_log_verify]
