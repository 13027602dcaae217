"""The gateway's app factory and process wiring (Litestar under uvicorn, two ports)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import psycopg_pool
from litestar import Litestar, Request, Response, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.types import ASGIApp, Receive, Scope, Send

from aragora.contracts import subjects
from aragora.contracts.subjects import EVENTS_STREAM
from aragora.gateway import (
    accounts,
    admin,
    audit_routes,
    auth_routes,
    breakers,
    debates,
    errors,
    incident_routes,
    leaderboard,
    receipts,
    system,
    ui,
    ws,
)
from aragora.gateway import debug as debug_routes
from aragora.gateway import ratelimit_routes as rate_limits
from aragora.gateway.auth import Authenticator, AuthMiddleware
from aragora.gateway.billing import billing_usage
from aragora.gateway.deps import Deps
from aragora.gateway.http_metrics import HttpObservabilityMiddleware
from aragora.gateway.live import token_forwarder
from aragora.gateway.projector import Projector
from aragora.gateway.ratelimit import RateLimitGate, RateLimitMiddleware
from aragora.gateway.readmodel import ReadModel
from aragora.gateway.rebuild import LIVE_CONSUMER
from aragora.gateway.revocation import AuthState
from aragora.gateway.security_events import AuditMiddleware, announce_start
from aragora.gateway.tokens import KeyRing, load_secret
from aragora.gateway.ws_stats import ws_stats
from aragora.runtime import bus
from aragora.runtime.logs import correlation_id_var
from aragora.runtime.settings import Settings

log = logging.getLogger("aragora.gateway")


class CorrelationMiddleware(ASGIMiddleware):
    """Takes X-Correlation-ID from the request (or makes one) and returns it."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        incoming = dict(scope.get("headers", [])).get(b"x-correlation-id", b"").decode()
        valid = incoming and len(incoming) <= 128 and incoming.isprintable()
        correlation_id = incoming if valid else f"corr-{uuid.uuid4().hex[:12]}"
        token = correlation_id_var.set(correlation_id)

        async def send_with_header(message: Any) -> None:
            if message["type"] == "http.response.start":
                # Exactly one X-Correlation-ID, even if a handler set it too.
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() != b"x-correlation-id"
                ]
                headers.append((b"x-correlation-id", correlation_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await next_app(scope, receive, send_with_header)
        finally:
            correlation_id_var.reset(token)


def _database_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.warning("database unavailable: %s", type(exc).__name__, extra={"path": request.url.path})
    return Response(
        error_body(503, "the database is unavailable; nothing was changed, retry shortly"),
        status_code=503,
        headers={"Retry-After": "5"},
    )


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if _is_database_outage(exc):
        return _database_unavailable(request, exc)
    # One place maps unexpected errors to HTTP; details go to the log, never the client.
    log.exception("unhandled error", extra={"path": request.url.path})
    _record_error(request, errors.http_error(request.url.path, exc, correlation_id_var.get()))
    return Response(
        error_body(500, "internal error"),
        status_code=500,
    )


API_VERSION = "1.0.0"
MAX_BODY_BYTES = 1_048_576  # 1 MiB: a debate request is a few KB


@get("/api/openapi.json", include_in_schema=False)
async def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of this API (the docs UI is at /api/docs)."""
    return request.app.openapi_schema.to_schema()


_background: set[asyncio.Task[None]] = set()


def _record_error(request: Request[Any, Any, Any], entry: dict[str, Any]) -> None:
    """Keep a gateway error for /api/system/errors without delaying the 500."""
    deps: Deps = request.app.state.deps

    async def write() -> None:
        with contextlib.suppress(Exception):  # the database may be what failed
            await deps.readmodel.run(lambda cur: errors.record(cur, entry))

    task = asyncio.get_running_loop().create_task(write())
    _background.add(task)
    task.add_done_callback(_background.discard)


def create_app(deps: Deps, *, own_lifecycle: bool = True, auth: bool = True) -> Litestar:
    """The gateway app. ``auth=False`` only for tests of parts behind the auth middleware
    (it then never sets an identity); every real server runs with it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if not own_lifecycle:
            yield
            return
        async with running(deps):
            yield

    if deps.ratelimit is None:
        deps.ratelimit = RateLimitGate(deps.settings)
    return Litestar(
        route_handlers=[
            debates.DebateController,
            breakers.circuit_breakers,
            breakers.reset_circuit,
            leaderboard.AgentController,
            receipts.debate_receipt,
            receipts.receipt_public_key,
            ws.debate_stream,
            ws.firehose,
            system.health,
            system.liveness,
            system.readiness,
            system.agents,
            system.asyncapi,
            system.schemas,
            system.prometheus_metrics,
            debug_routes.agent_test,
            debug_routes.connectivity_check,
            rate_limits.rate_limit_config,
            rate_limits.rate_limit_status,
            rate_limits.system_rate_limits,
            billing_usage,
            *auth_routes.ROUTES,
            *incident_routes.ROUTES,
            *audit_routes.ROUTES,
            ws_stats,
            errors.system_errors,
            admin.cleanup_caches,
            admin.memory_dump,
            openapi_json,
            *ui.ROUTES,
        ],
        state=State({"deps": deps}),
        lifespan=[lifespan],
        middleware=[
            CorrelationMiddleware(),
            HttpObservabilityMiddleware(deps.settings),
            AuditMiddleware(deps),  # outside auth: refusals are security events too
            *([AuthMiddleware(lambda: deps.auth, deps.settings.metrics_public)] if auth else []),
            RateLimitMiddleware(deps),
        ],
        exception_handlers={Exception: _internal_error, HTTPException: _http_error},
        debug=False,
        logging_config=None,  # the process's JSON logging stays in charge
        openapi_config=OpenAPIConfig(
            title="Aragora API",
            version=API_VERSION,
            path="/api/docs",
            render_plugins=[SwaggerRenderPlugin(path="/")],
        ),
        request_max_body_size=MAX_BODY_BYTES,
        cors_config=cors_config(deps.settings.cors_origins),
    )


def cors_config(origins: str) -> CORSConfig | None:
    """ARAGORA_CORS_ORIGINS: browsers on these origins may call the API (none by default)."""
    allowed = [o.strip().rstrip("/") for o in origins.split(",") if o.strip()]
    if not allowed:
        return None
    return CORSConfig(
        allow_origins=allowed,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Correlation-ID", "Idempotency-Key"],
        expose_headers=[
            "X-Correlation-ID",
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "Location",
        ],
        allow_credentials=False,  # bearer tokens, never cookies
        max_age=600,
    )


def _detail(exc: HTTPException) -> str:
    """Name the offending fields in the message itself, not only in ``extra``."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    named = [
        f"{p.get('key')}: {p.get('message')}"
        for p in problems
        if isinstance(p, dict) and p.get("key") and p.get("message")
    ]
    if exc.detail.startswith("Validation failed for") and named:
        return "Validation failed: " + "; ".join(named)
    return exc.detail


def _is_database_outage(exc: BaseException) -> bool:
    """psycopg/pool and sqlite3 connection failures (not programming errors)."""
    outage = (psycopg.OperationalError, psycopg_pool.PoolTimeout, sqlite3.OperationalError)
    return isinstance(exc, outage)


ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def error_body(status: int, detail: str, **more: Any) -> dict[str, Any]:
    """Every error the API returns: ``{error, code, detail}`` plus context."""
    return {
        "error": detail,
        "code": ERROR_CODES.get(status, f"http_{status}"),
        "detail": detail,
        "status_code": status,
        "correlation_id": correlation_id_var.get(),
        **more,
    }


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    body = error_body(exc.status_code, _detail(exc))
    if exc.extra:
        body["extra"] = exc.extra
    return Response(body, status_code=exc.status_code, headers=exc.headers)


@contextlib.asynccontextmanager
async def running(deps: Deps) -> AsyncIterator[None]:
    """Open the read model and the bus, and project events while the block runs."""
    admin.start_profiling(deps)
    await deps.readmodel.open()
    deps.auth = build_authenticator(deps)
    deps.bus = await bus.connect(deps.settings.nats_servers, name="aragora-gateway")
    await bus.ensure_streams(deps.bus.js, replicas=deps.settings.stream_replicas)
    # Revocations and the shared key ring are loaded before the first request is served.
    auth_state = deps.auth.state
    if auth_state is not None:
        await auth_state.start(deps.bus, deps.settings.stream_replicas)
        authenticator = deps.auth

        def close_revoked() -> None:  # open WebSockets whose token is now refused: 4401
            deps.hub.close_refused(authenticator.refusal)

        auth_state.add_listener(close_revoked)
    await announce_start(deps)
    projector = Projector(deps.readmodel, deps.hub)
    consumer = bus.Consumer(
        deps.bus, await projection_spec(deps.settings, deps.readmodel), projector.handle
    )
    task = asyncio.create_task(consumer.run(), name="projection")
    # Token deltas: core NATS (not JetStream), forwarded live, never stored.
    tokens = await deps.bus.nc.subscribe(subjects.LIVE_TOKENS, cb=token_forwarder(deps.hub))
    # Breakers opening and dead letters, for /api/system/errors (core NATS: a JetStream
    # publish reaches plain subscribers too; every replica records, the first insert wins).
    recorder = errors.bus_recorder(deps.readmodel)
    watched = [
        await deps.bus.nc.subscribe(subject, cb=recorder)
        for subject in (subjects.BREAKER_EVENTS, subjects.DEAD_LETTERS)
    ]
    try:
        yield
    finally:
        for subscription in (tokens, *watched):
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        await consumer.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 5)
        if auth_state is not None:
            await auth_state.stop()
        await deps.bus.close()
        await deps.readmodel.close()


REPLICA_CONSUMER_IDLE_SECONDS = 3600.0


async def projection_spec(settings: Settings, readmodel: ReadModel) -> bus.ConsumerSpec:
    """The projection's durable consumer: ``gateway-projection`` for a single gateway;
    ``gateway-projection-<ARAGORA_INSTANCE_ID>`` for each of several replicas.

    Every replica projects every event (the read model drops what another replica already
    applied), so each replica's WebSocket streams see every event at once. A replica's
    consumer starts where the shared read model stands and is deleted by the server after an
    hour without its replica.
    """
    spec = bus.ConsumerSpec(
        stream=EVENTS_STREAM.name,
        durable=LIVE_CONSUMER,
        filter_subject=subjects.DEBATE_EVENTS,
        concurrency=1,  # ordered: the read model applies each debate's events in seq order
    )
    instance = settings.instance_id
    if not instance or instance == "gateway":
        return spec
    positions = await readmodel.positions()
    return dataclasses.replace(
        spec,
        durable=f"{LIVE_CONSUMER}-{subjects.subject_token(instance)}",
        start_seq=min(positions.values(), default=0) + 1,
        inactive_threshold=REPLICA_CONSUMER_IDLE_SECONDS,
    )


def build_authenticator(deps: Deps) -> Authenticator:
    """Credentials checked against the signing key, ARAGORA_API_TOKEN and the accounts."""

    async def load_user(user_id: str) -> accounts.User | None:
        return await deps.readmodel.run(lambda cur: accounts.get_user(cur, user_id))

    async def load_key(key: str) -> tuple[accounts.User, accounts.Role, str] | None:
        return await deps.readmodel.run(lambda cur: accounts.lookup_api_key(cur, key))

    secret = load_secret(deps.settings)
    keys = KeyRing(secret)
    state = AuthState(keys, secret, token_ttl=deps.settings.access_token_ttl_seconds)
    return Authenticator(keys, deps.settings.api_token, load_user, load_key, state=state)
