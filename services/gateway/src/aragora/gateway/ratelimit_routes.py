"""Rate-limit routes: effective policy, the caller's counters, the admin view.

``GET /api/rate-limits/config`` and ``GET /api/rate-limits/status`` need any valid token
(the status shows only the caller's own counters). ``GET /api/system/rate-limits`` is an
admin view: the auth middleware lets only ``admin`` and ``owner`` reach ``/api/system/*``.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.datastructures import State
from litestar.params import QueryParameter

from aragora.contracts.ratelimit import BackendState
from aragora.gateway.debates import deps_of
from aragora.gateway.deps import Deps
from aragora.gateway.ratelimit import RateLimitGate, resolve_caller
from aragora.ratelimit.policy import config_document


def gate_of(deps: Deps) -> RateLimitGate:
    if deps.ratelimit is None:
        deps.ratelimit = RateLimitGate(deps.settings)
    return deps.ratelimit


def _state(state: BackendState) -> dict[str, Any]:
    return dict(msgspec.to_builtins(state))


@get("/api/rate-limits/config")
async def rate_limit_config(state: State) -> dict[str, Any]:
    """The effective policy; each value says whether it came from the env or the default."""
    return config_document(deps_of(state).settings)


@get("/api/rate-limits/status")
async def rate_limit_status(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """The caller's remaining budget per class (nothing consumed) and the backend in use."""
    deps = deps_of(state)
    gate = gate_of(deps)
    caller = resolve_caller(request.scope, gate.policy)
    whitelisted = gate.policy.whitelisted(caller.ip)
    reply = await gate.status(deps.bus, caller)
    counters = {
        c.endpoint_class: {
            "limit": c.limit,
            "remaining": c.remaining,
            "reset_seconds": c.reset_seconds,
            "window_seconds": c.window_seconds,
        }
        for c in reply.counters
    }
    return {
        "key": caller.key,
        "key_type": caller.key_type,
        "tier": caller.tier,
        "client_ip": caller.ip,
        "whitelisted": whitelisted,
        "limited": not whitelisted and reply.state.mode != "disabled",
        **_state(reply.state),
        "counters": counters,
    }


@get("/api/system/rate-limits")
async def system_rate_limits(
    state: State, top: Annotated[int, QueryParameter(ge=1, le=100)] = 10
) -> dict[str, Any]:
    """Admin: top limited keys, 429s per class, backend state (admin)."""
    deps = deps_of(state)
    gate = gate_of(deps)
    reply = await gate.stats(deps.bus, top)
    return {
        **_state(reply.state),
        "hits_by_class": reply.hits_by_class,
        "top_limited": [msgspec.to_builtins(k) for k in reply.top_limited],
        "checks": reply.checks,
        "gateway": {
            "service": {None: "not_asked", True: "ok", False: "unreachable"}[gate.service_ok],
            "local_fallback_hits": dict(gate.local.hits),
        },
    }
