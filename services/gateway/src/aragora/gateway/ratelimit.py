"""Rate limiting in the gateway: the middleware and its client of the ratelimit service.

Every request but probes and scrapes is classified, its client resolved (X-Forwarded-For
only through ``ARAGORA_TRUSTED_PROXIES``), whitelisted clients pass untouched, and the
others cost one ``aragora.rpc.ratelimit.check`` round trip. Admitted responses carry
``X-RateLimit-Limit``/``-Remaining``/``-Reset`` (Unix time when the budget is full again);
refused ones get a JSON 429 with ``Retry-After`` too, a log line with ``rate_limit`` in
its message and a ``rate_limit_hits`` count (labels ``class``, ``key_type``).

Fail open, deliberately: when no ratelimit service answers (no responders, bus down, or
``ARAGORA_RATE_LIMIT_TIMEOUT_SECONDS``, 3 s, passed) the gateway enforces the same policy
with its own in-memory budgets, logs a warning, reports ``degraded`` in health, and lets
one request at a time ask the service again each second. An outage of the limiter thus
never takes the API down, and nothing goes unlimited (budgets are per gateway meanwhile).
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import msgspec
import nats.errors
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import Counter

from aragora.contracts import subjects
from aragora.contracts.ratelimit import (
    BackendState,
    Caller,
    EndpointClass,
    RateLimitCheck,
    RateLimitDecision,
    RateLimitStatsReply,
    RateLimitStatsRequest,
    RateLimitStatusReply,
    RateLimitStatusRequest,
)
from aragora.ratelimit.limiter import Limiter
from aragora.ratelimit.policy import (
    EXEMPT_PATHS,
    Policy,
    caller_for,
    classify,
    client_ip,
    identity_of,
)
from aragora.runtime.logs import correlation_id_var
from aragora.runtime.settings import Settings

if TYPE_CHECKING:
    from aragora.gateway.deps import Deps
    from aragora.runtime.bus import Connection

log = logging.getLogger("aragora.gateway.ratelimit")
RETRY_SERVICE_SECONDS = 1.0
CLIENT_CACHE_SIZE = 4096  # distinct (peer, X-Forwarded-For) pairs remembered
rate_limit_hits = Counter(
    "rate_limit_hits", "Requests refused with 429, by endpoint class and key type",
    ["class", "key_type"],
)  # fmt: skip


class RateLimitGate:
    """Asks the ratelimit service; falls back to a local limiter when it cannot."""

    def __init__(self, settings: Settings) -> None:
        self.policy = Policy.from_settings(settings)
        # Long by default: under a burst the gateway's own event loop lags (a thousand
        # requests at once took 1.5 s here) and a short timeout would fail open exactly
        # when limits matter. A dead service is noticed at once (no responders).
        self.timeout = settings.rate_limit_timeout_seconds
        self.local = Limiter(self.policy, None, instance="gateway")
        self.service_ok: bool | None = None  # None: not asked yet
        self._clients: dict[tuple[str | None, str | None], tuple[str, bool]] = {}
        self._retry_at = 0.0
        self._probing = False
        if self.policy.disabled:
            log.error("rate_limit DISABLED: no request is limited (ARAGORA_RATE_LIMIT_DISABLED=1)")

    def client(self, peer: str | None, forwarded: str | None) -> tuple[str, bool]:
        """(client IP, whitelisted) of a TCP peer and its X-Forwarded-For, memoised: the
        address parsing and network tests cost more than the rest of the middleware."""
        key = (peer, forwarded)
        hit = self._clients.get(key)
        if hit is None:
            ip = client_ip(peer, forwarded, self.policy.trusted_proxies)
            hit = (ip, self.policy.whitelisted(ip))
            if len(self._clients) >= CLIENT_CACHE_SIZE:
                self._clients.clear()  # many distinct clients: start over, stay bounded
            self._clients[key] = hit
        return hit

    def _unreachable(self, why: str) -> None:
        self._retry_at = time.monotonic() + RETRY_SERVICE_SECONDS
        if self.service_ok is not False:
            log.warning(
                "rate_limit service unreachable: gateway-local limits (fail open)",
                extra={"reason": why},
            )
        self.service_ok = False

    async def _ask(self, bus: Connection | None, subject: str, request: Any) -> bytes | None:
        if bus is None or not bus.nc.is_connected:
            self._unreachable("bus down")
            return None
        try:
            msg = await bus.nc.request(subject, msgspec.json.encode(request), timeout=self.timeout)
        except nats.errors.NoRespondersError:
            self._unreachable("no responders")
            return None
        except (nats.errors.TimeoutError, TimeoutError):
            self._unreachable("timeout")
            return None
        except nats.errors.Error as exc:
            self._unreachable(type(exc).__name__)
            return None
        if self.service_ok is False:
            log.warning("rate_limit service reachable again")
        self.service_ok = True
        data: bytes = msg.data
        return data

    async def check(
        self, bus: Connection | None, caller: Caller, endpoint_class: EndpointClass
    ) -> RateLimitDecision:
        request = RateLimitCheck(caller=caller, endpoint_class=endpoint_class)
        if self.service_ok is not False:
            raw = await self._ask(bus, subjects.RATE_LIMIT_CHECK_RPC, request)
            if raw is not None:
                return msgspec.json.decode(raw, type=RateLimitDecision)
        elif not self._probing and time.monotonic() >= self._retry_at:
            self._probing = True  # one request asks the service again; the others go local
            try:
                raw = await self._ask(bus, subjects.RATE_LIMIT_CHECK_RPC, request)
            finally:
                self._probing = False
            if raw is not None:
                return msgspec.json.decode(raw, type=RateLimitDecision)
        decision = await self.local.check(request)
        return msgspec.structs.replace(decision, backend="gateway-memory", degraded=True)

    async def status(self, bus: Connection | None, caller: Caller | None) -> RateLimitStatusReply:
        raw = await self._ask(
            bus, subjects.RATE_LIMIT_STATUS_RPC, RateLimitStatusRequest(caller=caller)
        )
        if raw is not None:
            return msgspec.json.decode(raw, type=RateLimitStatusReply)
        reply = await self.local.status(caller)
        return msgspec.structs.replace(reply, state=self.fallback_state())

    async def stats(self, bus: Connection | None, top: int) -> RateLimitStatsReply:
        raw = await self._ask(bus, subjects.RATE_LIMIT_STATS_RPC, RateLimitStatsRequest(top=top))
        if raw is not None:
            return msgspec.json.decode(raw, type=RateLimitStatsReply)
        reply = await self.local.stats(top)
        return msgspec.structs.replace(reply, state=self.fallback_state())

    def fallback_state(self) -> BackendState:
        disabled = self.policy.disabled
        return BackendState(
            backend="disabled" if disabled else "gateway-memory",
            redis="unknown",
            mode=self.policy.mode,
            degraded=not disabled,
            detail="ratelimit service unreachable: the gateway enforces its own in-memory limits",
            instance="gateway",
        )


def _request_client(scope: Scope) -> tuple[str | None, str | None, str | None]:
    """(TCP peer, X-Forwarded-For joined, Authorization) of a request."""
    forwarded: list[str] = []
    authorization = None
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            forwarded.append(value.decode("latin-1"))
        elif name == b"authorization":
            authorization = value.decode("latin-1")
    client = scope.get("client")
    return (client[0] if client else None), (",".join(forwarded) or None), authorization


def _caller(scope: Scope, ip: str, authorization: str | None) -> Caller:
    state = scope.get("state")
    found = state.get("identity") if isinstance(state, dict) else None
    return caller_for(ip, authorization, identity_of(found))


def resolve_caller(scope: Scope, policy: Policy) -> Caller:
    peer, forwarded, authorization = _request_client(scope)
    ip = client_ip(peer, forwarded, policy.trusted_proxies)
    return _caller(scope, ip, authorization)


def limit_headers(decision: RateLimitDecision) -> list[tuple[bytes, bytes]]:
    reset = math.ceil(time.time() + decision.reset_seconds)
    headers = [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(reset).encode()),
    ]
    if not decision.allowed:
        headers.append(
            (b"retry-after", str(max(1, math.ceil(decision.retry_after_seconds))).encode())
        )
    return headers


class RateLimitMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)  # WebSocket upgrades are not limited here

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        gate = self.deps.ratelimit
        path = scope["path"]
        if gate is None or gate.policy.disabled or path in EXEMPT_PATHS:
            await next_app(scope, receive, send)
            return
        peer, forwarded, authorization = _request_client(scope)
        ip, whitelisted = gate.client(peer, forwarded)
        if whitelisted:
            await next_app(scope, receive, send)
            return
        caller = _caller(scope, ip, authorization)
        endpoint_class = classify(str(scope.get("method", "GET")), path)
        decision = await gate.check(self.deps.bus, caller, endpoint_class)
        headers = limit_headers(decision)
        if not decision.allowed:
            await _refuse(send, caller, endpoint_class, decision, headers, path)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await next_app(scope, receive, send_with_headers)


async def _refuse(
    send: Send,
    caller: Caller,
    endpoint_class: str,
    decision: RateLimitDecision,
    headers: list[tuple[bytes, bytes]],
    path: str,
) -> None:
    retry = max(1, math.ceil(decision.retry_after_seconds))
    rate_limit_hits.labels(endpoint_class, caller.key_type).inc()
    log.warning(
        "rate_limit exceeded",
        extra={
            "rate_limit_class": endpoint_class,
            "key_type": caller.key_type,
            "key": caller.key,  # an IP or a hash prefix, never a token
            "limit": decision.limit,
            "scope": decision.scope,
            "backend": decision.backend,
            "path": path,
        },
    )
    body = {
        "status_code": 429,
        "detail": f"rate limit exceeded for {endpoint_class}; retry in {retry}s",
        "class": endpoint_class,
        "scope": decision.scope,
        "limit": decision.limit,
        "remaining": 0,
        "reset": int(dict(headers)[b"x-ratelimit-reset"]),
        "retry_after": retry,
        "key_type": caller.key_type,
        "correlation_id": correlation_id_var.get(),
    }
    payload = json.dumps(body).encode()
    start_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *headers,
    ]
    start: Any = {"type": "http.response.start", "status": 429, "headers": start_headers}
    await send(start)
    await send({"type": "http.response.body", "body": payload, "more_body": False})
