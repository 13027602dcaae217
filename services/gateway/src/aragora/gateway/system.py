"""Health, agents, metrics and the published bus contract."""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from litestar import MediaType, Response, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException

from aragora.contracts.asyncapi import asyncapi_document, json_schemas
from aragora.gateway import breakers, metrics, ratelimit_routes
from aragora.gateway.debates import deps_of

CHECK_TIMEOUT = 2.0
log = logging.getLogger("aragora.gateway.system")


@functools.cache
def app_version() -> str:
    try:
        return version("aragora-gateway")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


async def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except Exception as exc:
        return {"status": "error", "error": type(exc).__name__}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


@get("/api/health")
async def health(state: State) -> Response[dict[str, Any]]:
    deps = deps_of(state)

    async def nats_check() -> None:
        if deps.bus is None or not deps.bus.nc.is_connected:
            raise ConnectionError("not connected")
        await deps.bus.nc.flush(timeout=int(CHECK_TIMEOUT))

    async def breaker_check() -> dict[str, Any]:
        try:
            return await asyncio.wait_for(breakers.summary(deps), CHECK_TIMEOUT)
        except Exception as exc:
            return {"open": None, "half_open": None, "error": type(exc).__name__}

    database, nats, circuit_breakers, (redis, rate_limiting) = await asyncio.gather(
        _timed(deps.readmodel.ping), _timed(nats_check), breaker_check(), _rate_limiting(deps)
    )
    active: int | None = None
    if database["status"] == "ok":  # else it would only wait out the pool's timeout too
        try:
            active = await asyncio.wait_for(deps.readmodel.count_running(), CHECK_TIMEOUT)
        except Exception:
            active = None
    failing = [name for name, c in (("database", database), ("nats", nats)) if c["status"] != "ok"]
    status = "healthy" if not failing else ("unhealthy" if len(failing) == 2 else "degraded")
    body = {
        "status": status,
        "version": app_version(),
        "uptime_seconds": int(time.monotonic() - deps.started),
        "mode": deps.registry.mode,
        "checks": {
            "database": {
                **database,
                "backend": "postgresql" if deps.readmodel.postgres else "sqlite",
            },
            "nats": nats,
            "websocket": {"status": "ok", "connections": deps.hub.connections},
            "redis": redis,
            "rate_limiting": rate_limiting,
            "memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "active_debates": active,
            "circuit_breakers": circuit_breakers,
        },
    }
    if rate_limiting["status"] != "ok":
        body["warnings"] = [f"rate limiting {rate_limiting['status']}: {rate_limiting['detail']}"]
    # 503 only when the API cannot serve at all; a degraded gateway still answers reads.
    return Response(body, status_code=503 if status == "unhealthy" else 200)


async def _rate_limiting(deps: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(checks.redis, checks.rate_limiting) as the ratelimit service reports them."""
    gate = ratelimit_routes.gate_of(deps)
    state = (await gate.status(deps.bus, None)).state
    redis_status = {"up": "ok", "down": "down"}.get(state.redis, state.redis)
    status = "degraded" if state.degraded else "ok"
    if state.mode == "disabled":
        status = "disabled"
    return (
        {"status": redis_status, "latency_ms": state.redis_latency_ms, "used_by": "rate limiting"},
        {
            "status": status,
            "backend": state.backend,
            "mode": state.mode,
            "detail": state.detail,
        },
    )


@get(["/healthz"])
async def liveness() -> dict[str, str]:
    return {"status": "ok"}


@get(["/readyz"])
async def readiness(state: State) -> Response[dict[str, str]]:
    deps = deps_of(state)
    ready = deps.bus is not None and deps.bus.nc.is_connected
    return Response(
        {"status": "ready" if ready else "not_ready"}, status_code=200 if ready else 503
    )


@get("/api/agents")
async def agents(state: State) -> dict[str, Any]:
    registry = deps_of(state).registry
    return {
        "mode": registry.mode,
        "note": (
            "No provider key or base URL is configured: debates use the offline demo agents."
            if registry.mode == "demo"
            else "Provider agents are configured."
        ),
        "default_agents": registry.default_agents,
        "agents": [
            {"name": a.name, "provider": a.provider, "model": a.model}
            for a in registry.agents.values()
        ],
    }


@get("/api/asyncapi.json")
async def asyncapi() -> dict[str, Any]:
    return asyncapi_document(app_version())


@get("/api/schemas")
async def schemas() -> dict[str, Any]:
    return json_schemas()


@get(["/api/metrics", "/metrics"], media_type=MediaType.TEXT)
async def prometheus_metrics(state: State) -> Response[bytes]:
    if not deps_of(state).settings.metrics_enabled:  # METRICS_ENABLED=false
        raise NotFoundException("metrics are disabled (METRICS_ENABLED=false)")
    try:  # the breaker gauge is read now; without the bus it keeps its last values
        states = await asyncio.wait_for(breakers.agent_states(deps_of(state)), CHECK_TIMEOUT)
    except Exception as exc:
        log.debug("circuit breakers not read for /metrics: %s", type(exc).__name__)
    else:
        metrics.record_breakers(states)
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE_LATEST)
