"""REST routes of debates: create, read, list, replay."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import (
    ClientException,
    PermissionDeniedException,
    ServiceUnavailableException,
)
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_409_CONFLICT

from aragora.contracts import codec, subjects
from aragora.contracts.messages import CancelDebate, StartDebate
from aragora.gateway import metrics
from aragora.gateway.deps import Deps
from aragora.gateway.projection import RUNNING, initial_view
from aragora.gateway.requests import CreateDebate, invalid, resolve_protocol
from aragora.gateway.visibility import can_change, identity_of, list_filter, owner_key, visible
from aragora.runtime import bus
from aragora.runtime.logs import correlation_id_var

Status = Literal[
    "queued",
    "running",
    "consensus",
    "no_consensus",
    "failed",
    "timeout",
    "cancelled",
    "budget_exceeded",
]
_IDEMPOTENCY_NS = uuid.UUID("6f0c5c1e-3d1b-4a57-9a43-6a3f3c0f4a11")
MAX_AGENTS = 8


class ConflictException(ClientException):
    status_code = HTTP_409_CONFLICT


def deps_of(state: State) -> Deps:
    deps: Deps = state.deps
    return deps


log = logging.getLogger("aragora.gateway.debates")


class DebateController(Controller):
    path = "/api/debates"
    tags = ["debates"]

    @post("/", status_code=202)
    async def create(
        self, data: JSONBody[CreateDebate], state: State, request: Request[Any, Any, Any]
    ) -> Response[dict[str, str]]:
        deps = deps_of(state)
        topic = data.topic.strip()
        if not topic:
            raise invalid("topic", "must not be blank")
        agents = data.agents if data.agents is not None else deps.registry.default_agents
        if not 2 <= len(agents) <= MAX_AGENTS:
            raise invalid("agents", f"need between 2 and {MAX_AGENTS} agents, got {len(agents)}")
        if len(set(agents)) != len(agents):
            raise invalid("agents", "each agent may appear once")
        unknown = deps.registry.unknown(agents)
        if unknown:
            known = ", ".join(sorted(deps.registry.agents))
            raise invalid("agents", f"unknown agent(s) {', '.join(unknown)}; known: {known}")
        if deps.bus is None or not deps.bus.nc.is_connected:
            raise ServiceUnavailableException("the message bus is unavailable; retry shortly")
        protocol = resolve_protocol(data, deps.settings)
        key = request.headers.get("idempotency-key")
        debate_id = str(uuid.uuid5(_IDEMPOTENCY_NS, key) if key else uuid.uuid4())
        correlation_id = correlation_id_var.get() or f"corr-{uuid.uuid4().hex[:12]}"
        now = datetime.now(UTC)
        rounds = protocol.rounds
        command = StartDebate(
            event_id=str(uuid.uuid5(uuid.UUID(debate_id), "start")),
            occurred_at=now,
            correlation_id=correlation_id,
            debate_id=debate_id,
            topic=topic,
            agents=agents,
            rounds=rounds,
            consensus=protocol.consensus,
            threshold=protocol.threshold,
            protocol=protocol,
            domain=data.domain,
            requested_by=owner_key(identity_of(request.scope)),
            public=data.public,
        )
        await deps.readmodel.accept(
            initial_view(
                debate_id,
                topic,
                agents,
                rounds,
                now.isoformat(),
                requested_by=command.requested_by,
                public=data.public,
            )
        )
        try:
            await bus.publish(
                deps.bus.js, subjects.START_DEBATE, codec.encode(command), command.event_id
            )
        except Exception as exc:  # NATS refused or timed out after the publish's retries
            log.warning(
                "start command not accepted by the bus: %s",
                type(exc).__name__,
                extra={"debate_id": debate_id},
            )
            await deps.readmodel.forget_provisional(debate_id)
            raise ServiceUnavailableException(
                "the message bus did not accept the debate; nothing was started, retry shortly",
                headers={"Retry-After": "5"},
            ) from None
        metrics.debates_started.inc()
        return Response(
            {"id": debate_id, "status": "running"},
            status_code=202,
            headers={"Location": f"/api/debates/{debate_id}", "X-Correlation-ID": correlation_id},
        )

    @get("/")
    async def list_debates(
        self,
        state: State,
        request: Request[Any, Any, Any],
        status: FromQuery[Status | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """Newest first: every debate for admins and owners; for other users their own
        debates and public ones."""
        viewer = list_filter(identity_of(request.scope))
        debates = await deps_of(state).readmodel.list_views(status, limit, visible_to=viewer)
        return {"debates": debates, "count": len(debates)}

    @get("/{debate_id:str}")
    async def get_debate(
        self, debate_id: FromPath[str], state: State, request: Request[Any, Any, Any]
    ) -> dict[str, Any]:
        return visible(request, debate_id, await deps_of(state).readmodel.get(debate_id))

    @get("/{debate_id:str}/events")
    async def events(
        self,
        debate_id: FromPath[str],
        state: State,
        request: Request[Any, Any, Any],
        after: Annotated[int, QueryParameter(ge=0)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 1000,
    ) -> Response[bytes]:
        deps = deps_of(state)
        visible(request, debate_id, await deps.readmodel.get(debate_id))
        bodies = await deps.readmodel.events(debate_id, after, limit)
        # Stored bodies are already the wire JSON: splice them without re-encoding.
        payload = b'{"debate_id":%s,"events":[%s]}' % (
            msgspec.json.encode(debate_id),
            ",".join(bodies).encode(),
        )
        return Response(payload, media_type="application/json")

    @post("/{debate_id:str}/cancel", status_code=202)
    async def cancel(
        self, debate_id: FromPath[str], state: State, request: Request[Any, Any, Any]
    ) -> dict[str, str]:
        deps = deps_of(state)
        view = visible(request, debate_id, await deps.readmodel.get(debate_id))
        if not can_change(identity_of(request.scope), view):
            raise PermissionDeniedException("only its creator or an admin can cancel a debate")
        if view["status"] not in ("queued", RUNNING):
            raise ConflictException(f"debate {debate_id} already ended: {view['status']}")
        if deps.bus is None or not deps.bus.nc.is_connected:
            raise ServiceUnavailableException("the message bus is unavailable; retry shortly")
        command = CancelDebate(
            event_id=str(uuid.uuid5(uuid.UUID(debate_id), "cancel")),
            occurred_at=datetime.now(UTC),
            correlation_id=correlation_id_var.get() or f"corr-{uuid.uuid4().hex[:12]}",
            debate_id=debate_id,
        )
        await bus.publish(
            deps.bus.js, subjects.CANCEL_DEBATE, codec.encode(command), command.event_id
        )
        return {"id": debate_id, "status": "cancelling"}
