"""REST routes of debates: create, read, list, replay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, ServiceUnavailableException, ValidationException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from aragora.contracts import codec, subjects
from aragora.contracts.messages import StartDebate
from aragora.gateway import metrics
from aragora.gateway.deps import Deps
from aragora.gateway.projection import initial_view
from aragora.runtime import bus
from aragora.runtime.logs import correlation_id_var

Status = Literal["running", "consensus", "no_consensus", "failed", "timeout", "cancelled"]
_IDEMPOTENCY_NS = uuid.UUID("6f0c5c1e-3d1b-4a57-9a43-6a3f3c0f4a11")
MAX_AGENTS = 8


class CreateDebate(msgspec.Struct, forbid_unknown_fields=True):
    topic: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
    agents: list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]] | None = None
    rounds: Annotated[int, msgspec.Meta(ge=1, le=12)] | None = None
    consensus: Literal["majority", "supermajority", "unanimous"] = "majority"


def _invalid(field: str, message: str) -> ValidationException:
    return ValidationException(
        detail=f"Validation failed: {field}: {message}",
        extra=[{"key": field, "message": message, "source": "body"}],
    )


def deps_of(state: State) -> Deps:
    deps: Deps = state.deps
    return deps


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
            raise _invalid("topic", "must not be blank")
        agents = data.agents if data.agents is not None else deps.registry.default_agents
        if not 2 <= len(agents) <= MAX_AGENTS:
            raise _invalid("agents", f"need between 2 and {MAX_AGENTS} agents, got {len(agents)}")
        if len(set(agents)) != len(agents):
            raise _invalid("agents", "each agent may appear once")
        unknown = deps.registry.unknown(agents)
        if unknown:
            known = ", ".join(sorted(deps.registry.agents))
            raise _invalid("agents", f"unknown agent(s) {', '.join(unknown)}; known: {known}")
        if deps.bus is None or not deps.bus.nc.is_connected:
            raise ServiceUnavailableException("the message bus is unavailable; retry shortly")
        running = await deps.readmodel.count_running()
        if running >= deps.settings.max_concurrent_debates:
            raise ServiceUnavailableException(
                f"{running} debates are running (ARAGORA_MAX_CONCURRENT_DEBATES); retry later"
            )
        key = request.headers.get("idempotency-key")
        debate_id = str(uuid.uuid5(_IDEMPOTENCY_NS, key) if key else uuid.uuid4())
        correlation_id = correlation_id_var.get() or f"corr-{uuid.uuid4().hex[:12]}"
        now = datetime.now(UTC)
        rounds = data.rounds or deps.settings.default_rounds
        command = StartDebate(
            event_id=str(uuid.uuid5(uuid.UUID(debate_id), "start")),
            occurred_at=now,
            correlation_id=correlation_id,
            debate_id=debate_id,
            topic=topic,
            agents=agents,
            rounds=rounds,
            consensus=data.consensus,
            threshold=deps.settings.consensus_threshold,
        )
        await deps.readmodel.accept(initial_view(debate_id, topic, agents, rounds, now.isoformat()))
        await bus.publish(
            deps.bus.js, subjects.START_DEBATE, codec.encode(command), command.event_id
        )
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
        status: FromQuery[Status | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        debates = await deps_of(state).readmodel.list_views(status, limit)
        return {"debates": debates, "count": len(debates)}

    @get("/{debate_id:str}")
    async def get_debate(self, debate_id: FromPath[str], state: State) -> dict[str, Any]:
        view = await deps_of(state).readmodel.get(debate_id)
        if view is None:
            raise NotFoundException(f"no debate {debate_id}")
        return view

    @get("/{debate_id:str}/events")
    async def events(
        self,
        debate_id: FromPath[str],
        state: State,
        after: Annotated[int, QueryParameter(ge=0)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 1000,
    ) -> Response[bytes]:
        deps = deps_of(state)
        bodies = await deps.readmodel.events(debate_id, after, limit)
        if not bodies and await deps.readmodel.get(debate_id) is None:
            raise NotFoundException(f"no debate {debate_id}")
        # Stored bodies are already the wire JSON: splice them without re-encoding.
        payload = b'{"debate_id":%s,"events":[%s]}' % (
            msgspec.json.encode(debate_id),
            ",".join(bodies).encode(),
        )
        return Response(payload, media_type="application/json")
