"""Operator debug routes: test one agent, check provider connectivity.

``POST /api/debug/agent-test`` ``{"agent", "prompt"}`` runs one plain completion directly
and returns its text, latency and tokens, or the provider's error (as data, HTTP 200).
``POST /api/debug/connectivity-check`` reports DNS/TCP/TLS/auth reachability of every
configured provider. The gateway never calls a provider itself: both ask an agent-runner
over NATS request/reply (``aragora.rpc.agent.test`` / ``aragora.rpc.agent.connectivity``),
and answer 503 when no runner replies in time.

Bodies are read as JSON whatever the Content-Type (the runbook's ``curl -d`` sends a form
type), and may be empty: ``prompt`` defaults to "Say hello".

Admin-only: the auth middleware lets only the ``admin`` and ``owner`` roles reach
``/api/debug/*`` (:func:`aragora.gateway.auth.required_role`).
"""

from __future__ import annotations

from typing import Any

import msgspec
import nats.errors
from litestar import Request, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException

from aragora.contracts import subjects
from aragora.contracts.rpc import (
    DEFAULT_TEST_PROMPT,
    STEP_TIMEOUT_SECONDS,
    TEST_TIMEOUT_CAP_SECONDS,
    AgentTestReply,
    AgentTestRequest,
    ConnectivityReply,
    ConnectivityRequest,
)
from aragora.gateway.debates import deps_of
from aragora.gateway.deps import Deps

REPLY_MARGIN_SECONDS = 5.0
"""How much longer than the runner's own deadline the gateway waits for its reply."""
NO_RUNNER = "no agent-runner answered"


class _AgentTestBody(msgspec.Struct, kw_only=True):
    agent: str
    prompt: str = DEFAULT_TEST_PROMPT


class _ConnectivityBody(msgspec.Struct, kw_only=True):
    agents: list[str] = []


def _bad_request(detail: str) -> HTTPException:
    return HTTPException(status_code=400, detail=detail)


async def _body(request: Request[Any, Any, Any], shape: type[Any]) -> Any:
    raw = (await request.body()).strip() or b"{}"
    try:
        return msgspec.json.decode(raw, type=shape)
    except msgspec.ValidationError as exc:
        raise _bad_request(f"Validation failed: {exc}") from None
    except msgspec.DecodeError:
        raise _bad_request("the body must be a JSON object") from None


def _check_known(deps: Deps, names: list[str]) -> None:
    unknown = deps.registry.unknown(names)
    if unknown:
        known = ", ".join(sorted(deps.registry.agents))
        raise NotFoundException(f"unknown agent(s) {', '.join(unknown)}; known agents: {known}")


async def _ask(deps: Deps, subject: str, payload: bytes, timeout: float) -> bytes:
    if deps.bus is None or not deps.bus.nc.is_connected:
        raise HTTPException(
            status_code=503,
            detail="the bus is unavailable; no agent-runner can be asked now",
            headers={"Retry-After": "5"},
        )
    try:
        msg = await deps.bus.nc.request(subject, payload, timeout=timeout)
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError):
        raise HTTPException(
            status_code=503,
            detail=f"{NO_RUNNER} within {timeout:g}s",
            headers={"Retry-After": "5"},
        ) from None
    data: bytes = msg.data
    return data


@post("/api/debug/agent-test", status_code=200)
async def agent_test(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Run one turn of ``agent`` with ``prompt`` (admin-only)."""
    deps = deps_of(state)
    body: _AgentTestBody = await _body(request, _AgentTestBody)
    _check_known(deps, [body.agent])
    timeout = min(deps.settings.agent_timeout_seconds, TEST_TIMEOUT_CAP_SECONDS)
    ask = AgentTestRequest(agent=body.agent, prompt=body.prompt, timeout_seconds=timeout)
    raw = await _ask(
        deps,
        subjects.AGENT_TEST_RPC,
        msgspec.json.encode(ask),
        timeout + REPLY_MARGIN_SECONDS,
    )
    reply = msgspec.json.decode(raw, type=AgentTestReply)
    if reply.error == "unknown_agent":
        raise NotFoundException(reply.detail)
    result = msgspec.to_builtins(reply)
    del result["type"]
    if reply.error is None:
        del result["error"], result["detail"]
    return dict(result)


@post("/api/debug/connectivity-check", status_code=200)
async def connectivity_check(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """DNS/TCP/TLS/auth of each configured provider (admin-only once auth lands).

    An optional body ``{"agents": [...]}`` limits the check to those agents.
    """
    deps = deps_of(state)
    body: _ConnectivityBody = await _body(request, _ConnectivityBody)
    _check_known(deps, body.agents)
    ask = ConnectivityRequest(agents=body.agents, step_timeout_seconds=STEP_TIMEOUT_SECONDS)
    # Steps run one after another (at most four per agent), agents side by side.
    timeout = 4 * STEP_TIMEOUT_SECONDS + REPLY_MARGIN_SECONDS
    raw = await _ask(deps, subjects.AGENT_CONNECTIVITY_RPC, msgspec.json.encode(ask), timeout)
    reply = msgspec.json.decode(raw, type=ConnectivityReply)
    agents = msgspec.to_builtins(reply.agents)
    return {
        "agents": agents,
        "ok": all(a["status"] != "error" for a in agents.values()),
    }
