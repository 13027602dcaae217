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


HEALTH_CACHE_SECONDS = 1.0
"""How old the dependency checks in ``/api/health`` may be (as ``breakers.summary``)."""


class _DependencyChecks:
    """``/api/health``'s checks of its dependencies (database and active debates, NATS,
    Redis and the ratelimit service; and the peak RSS), run by at most one request at a
    time and reused for :data:`HEALTH_CACHE_SECONDS`: a probe endpoint under load (or
    polled by many probes during an outage) costs its dependencies one set of round trips
    per second, not one per request. Results are at most that old, counted from when the
    checks started."""

    def __init__(self) -> None:
        self._checked_at = -HEALTH_CACHE_SECONDS
        self._result: dict[str, Any] | None = None
        self._running: asyncio.Task[dict[str, Any]] | None = None

    def fresh(self) -> dict[str, Any] | None:
        """The last result if it is recent enough (no await: the common case)."""
        if self._result is not None and time.monotonic() - self._checked_at < HEALTH_CACHE_SECONDS:
            return self._result
        return None

    async def get(self, deps: Any) -> dict[str, Any]:
        fresh = self.fresh()
        if fresh is not None:
            return fresh
        if self._running is None:
            self._running = asyncio.create_task(self._check(deps), name="health-checks")
        # Shielded: a client that hangs up does not cancel the checks others wait for.
        return await asyncio.shield(self._running)

    async def _check(self, deps: Any) -> dict[str, Any]:
        started = time.monotonic()
        try:
            result = await _check_dependencies(deps)
        finally:
            self._running = None
        self._result, self._checked_at = result, started
        return result


async def _check_dependencies(deps: Any) -> dict[str, Any]:
    async def nats_check() -> None:
        if deps.bus is None or not deps.bus.nc.is_connected:
            raise ConnectionError("not connected")
        await deps.bus.nc.flush(timeout=int(CHECK_TIMEOUT))

    database, nats, (redis, rate_limiting) = await asyncio.gather(
        _timed(deps.readmodel.ping), _timed(nats_check), _rate_limiting(deps)
    )
    active: int | None = None
    if database["status"] == "ok":  # else it would only wait out the pool's timeout too
        try:
            active = await asyncio.wait_for(deps.readmodel.count_running(), CHECK_TIMEOUT)
        except Exception:
            active = None
    return {
        "database": database,
        "nats": nats,
        "redis": redis,
        "rate_limiting": rate_limiting,
        "active_debates": active,
        # Peak RSS; with the checks because getrusage costs more than the rest of a hit.
        "memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _dependency_checks(state: State) -> _DependencyChecks:
    checks = state.get("health_checks")
    if checks is None:
        checks = state["health_checks"] = _DependencyChecks()
    assert isinstance(checks, _DependencyChecks)
    return checks


def _fresh_breaker_summary(deps: Any) -> dict[str, Any] | None:
    """``breakers.summary``'s cached counts while they are fresh (a reset drops them)."""
    cached = deps.breaker_summary
    if cached is not None and time.monotonic() - cached[0] <= breakers.SUMMARY_TTL:
        return dict(cached[1])
    return None


@get("/api/health")
async def health(state: State) -> Response[dict[str, Any]]:
    deps = deps_of(state)

    async def breaker_check() -> dict[str, Any]:
        try:  # cached for a second too, and dropped at once by a breaker reset
            return await asyncio.wait_for(breakers.summary(deps), CHECK_TIMEOUT)
        except Exception as exc:
            return {"open": None, "half_open": None, "error": type(exc).__name__}

    checks = _dependency_checks(state)
    fresh, fresh_breakers = checks.fresh(), _fresh_breaker_summary(deps)
    if fresh is not None and fresh_breakers is not None:  # no task, no round trip
        checked, circuit_breakers = fresh, fresh_breakers
    else:
        checked, circuit_breakers = await asyncio.gather(checks.get(deps), breaker_check())
    database, nats, rate_limiting = (
        checked["database"],
        checked["nats"],
        checked["rate_limiting"],
    )
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
            "redis": checked["redis"],
            "rate_limiting": rate_limiting,
            "memory_mb": checked["memory_mb"],
            "active_debates": checked["active_debates"],
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
