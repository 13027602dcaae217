"""Circuit-breaker routes: read every agent's breaker, and reset one.

The state lives in the NATS KV bucket ``ARAGORA_BREAKERS`` that the agent-runners share
(``aragora.runtime.breakers``), so a reset here is seen by every runner replica.
No authentication yet: these routes are open like the rest of the API until the auth
issue lands (the reset route is an operator action and will then need an admin role).
"""

from __future__ import annotations

import time
from typing import Any

from litestar import get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath

from aragora.contracts.subjects import subject_token
from aragora.gateway.debates import deps_of
from aragora.gateway.deps import Deps
from aragora.runtime.breakers import BreakerState, KVBreakerStore, breaker_view, reset_state

SUMMARY_TTL = 1.0


def _store(deps: Deps) -> KVBreakerStore:
    if deps.bus is None or not deps.bus.nc.is_connected:
        raise HTTPException(
            status_code=503,
            detail="the bus is unavailable; circuit breakers cannot be read now",
            headers={"Retry-After": "5"},
        )
    if deps.breakers is None or deps.breakers.js is not deps.bus.js:
        deps.breakers = KVBreakerStore(deps.bus.js)
    return deps.breakers


def _by_agent(deps: Deps, states: dict[str, BreakerState]) -> dict[str, BreakerState]:
    """Registered agents (closed when never stored) plus any other agent the KV holds."""
    result = {
        name: states.pop(subject_token(name), BreakerState()) for name in deps.registry.agents
    }
    result.update(states)
    return result


async def summary(deps: Deps) -> dict[str, int]:
    """``{"open": n, "half_open": m}`` from KV, cached for up to a second (for /api/health)."""
    now = time.monotonic()
    cached = deps.breaker_summary
    if cached is not None and now - cached[0] <= SUMMARY_TTL:
        return cached[1]
    states = await _store(deps).all()
    counts = {
        "open": sum(s.state == "open" for s in states.values()),
        "half_open": sum(s.state == "half_open" for s in states.values()),
    }
    deps.breaker_summary = (now, counts)
    return counts


async def agent_states(deps: Deps) -> dict[str, str]:
    """Every agent's breaker state name (closed, half_open, open), for the metrics gauge."""
    return {name: b.state for name, b in _by_agent(deps, await _store(deps).all()).items()}


@get(["/api/agents/circuit-breakers", "/api/system/circuit-breakers"])
async def circuit_breakers(state: State) -> dict[str, Any]:
    """Every agent's breaker (the /api/system path is admin-only)."""
    deps = deps_of(state)
    states = _by_agent(deps, await _store(deps).all())
    views = []
    for name, breaker in sorted(states.items()):
        spec = deps.registry.get(name)
        views.append({**breaker_view(name, breaker), "provider": spec.provider if spec else None})
    return {
        "agents": views,
        "open": sum(v["state"] == "open" for v in views),
        "half_open": sum(v["state"] == "half_open" for v in views),
    }


@post("/api/agents/{name:str}/reset-circuit", status_code=200)
async def reset_circuit(name: FromPath[str], state: State) -> dict[str, Any]:
    """Close an agent's breaker for every replica (admin-only)."""
    deps = deps_of(state)
    if deps.registry.get(name) is None:
        raise NotFoundException(f"no agent {name}")

    def change(current: BreakerState) -> BreakerState:
        if current == BreakerState(updated_at=current.updated_at):
            return current  # already closed and clean
        return reset_state()

    old, new = await _store(deps).update(name, change, reason="reset by operator")
    deps.breaker_summary = None
    return {**breaker_view(name, new), "previous": old.state}
