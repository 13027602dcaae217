"""Security events the gateway publishes for the audit service, from one middleware.

A handler describes what a request did with :func:`note` (``auth.login`` and who tried,
``token.revoke`` and which ``jti``...); :class:`AuditMiddleware` — outside the auth
middleware, so it also sees refusals — publishes one :class:`SecurityEvent` per request
that has a note, or that touched an operator route (``/api/admin/*``, ``/api/debug/*``,
writes to ``/api/system/*``, breaker resets), or that was refused with a credential (401
with a token, any 403). Actor, role, IP, correlation id and the outcome (from the status
code) are filled in here, so no handler can forget them.

Publishing waits for JetStream's ack (the event is durable before the response ends). If
NATS is unreachable the request still completes: the failure is logged and counted
(``aragora_security_events_unpublished_total``), never silently dropped.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import Counter

from aragora.contracts import codec
from aragora.contracts.security import Outcome, SecurityEvent, security_event_subject
from aragora.ratelimit.policy import client_ip
from aragora.runtime import bus
from aragora.runtime.logs import correlation_id_var
from aragora.runtime.settings import parse_networks

if TYPE_CHECKING:
    from aragora.gateway.auth import Identity
    from aragora.gateway.deps import Deps

log = logging.getLogger("aragora.gateway.security")

published = Counter(
    "aragora_security_events_published", "Security events published for the audit log", ["action"]
)
unpublished = Counter(
    "aragora_security_events_unpublished",
    "Security events that could not be published (NATS unreachable): missing from the audit log",
)

_OPERATOR_PREFIXES = ("/api/admin/", "/api/debug/")
PUBLISH_TIMEOUT = 3.0


@dataclass
class AuditNote:
    """What a handler says its request did; the middleware adds who, from where, outcome."""

    action: str
    target: str = ""
    actor: str = ""  # when no credential says who (a login names an email)
    actor_id: str = ""
    actor_role: str = ""
    actor_kind: str = ""
    detail: dict[str, str] = field(default_factory=dict)


def note(request: Request[Any, Any, Any], action: str, **fields: Any) -> AuditNote:
    """Record ``action`` for this request (fields of :class:`AuditNote`); returns the note so
    the handler can add the target or actor once it knows them."""
    entry = AuditNote(action=action, **fields)
    request.scope.setdefault("state", {})["audit"] = entry
    return entry


def outcome_of(status: int) -> Outcome:
    if status < 400:
        return "success"
    if status in (401, 403):
        return "denied"
    return "failure" if status < 500 else "error"


def _operator_action(method: str, path: str) -> str | None:
    if path.endswith("/reset-circuit"):
        return "breaker.reset"
    if path.startswith("/api/debug/"):
        return "debug.request"
    if path.startswith("/api/admin/"):
        return "admin.request"
    if path.startswith("/api/system/") and method not in ("GET", "HEAD", "OPTIONS"):
        return "admin.request"
    return None


def _has_credential(scope: Scope) -> bool:
    return any(name == b"authorization" and value.strip() for name, value in scope["headers"])


class SecurityPublisher:
    """Publishes :class:`SecurityEvent` on the gateway's bus connection."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._trusted = parse_networks(deps.settings.trusted_proxies)

    def ip(self, scope: Scope) -> str:
        forwarded = [v.decode("latin-1") for n, v in scope["headers"] if n == b"x-forwarded-for"]
        client = scope.get("client")
        return client_ip(client[0] if client else None, ",".join(forwarded) or None, self._trusted)

    async def publish(self, event: SecurityEvent) -> bool:
        conn = self.deps.bus
        try:
            if conn is None:
                raise ConnectionError("no bus connection")
            await bus.publish(
                conn.js,
                security_event_subject(event.action),
                codec.encode(event),
                msg_id=event.event_id,
                timeout=PUBLISH_TIMEOUT,
            )
        except Exception as exc:
            unpublished.inc()
            log.error(
                "security event not published: %s",
                type(exc).__name__,
                extra={"action": event.action, "event_id": event.event_id},
            )
            return False
        published.labels(event.action).inc()
        return True

    async def emit(
        self,
        action: str,
        outcome: Outcome,
        *,
        identity: Identity | None = None,
        target: str = "",
        actor: str = "",
        actor_id: str = "",
        actor_role: str = "",
        actor_kind: str = "",
        ip: str = "",
        detail: dict[str, str] | None = None,
    ) -> bool:
        """Publish one event; ``identity`` (the caller) names the actor when given."""
        if identity is not None:
            actor = identity.email or ("service" if identity.kind == "service" else actor)
            actor_id = identity.subject
        event = SecurityEvent(
            event_id=str(uuid.uuid4()),
            occurred_at=datetime.now(UTC),
            correlation_id=correlation_id_var.get() or f"corr-{uuid.uuid4().hex[:12]}",
            action=action,
            outcome=outcome,
            actor=actor or actor_id or "anonymous",
            actor_id=actor_id,
            actor_role=identity.role if identity is not None else actor_role,
            actor_kind=identity.kind if identity is not None else (actor_kind or "anonymous"),
            target=target,
            ip=ip,
            service="gateway",
            detail=detail or {},
        )
        return await self.publish(event)


class AuditMiddleware(ASGIMiddleware):
    """One security event per request that matters (see the module docstring)."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, deps: Deps) -> None:
        self.publisher = SecurityPublisher(deps)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        state = scope.setdefault("state", {})
        status = [500]

        async def watch_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await next_app(scope, receive, watch_status)
        finally:
            # Decided without awaiting: most requests record nothing.
            action = _action_of(scope, state, status[0])
            if action is not None:
                await self._record(scope, state, status[0], action)

    async def _record(self, scope: Scope, state: dict[str, Any], status: int, action: str) -> None:
        publisher = self.publisher
        method, path = str(scope.get("method", "GET")), str(scope["path"])
        entry: AuditNote | None = state.get("audit")
        identity = state.get("identity")
        detail = {"method": method, "path": path, "status": str(status)}
        if status == 401 and identity is None and _has_credential(scope):
            detail["credential"] = _fingerprint(scope)  # which credential, never the credential
        if entry is not None:
            detail.update(entry.detail)
        await publisher.emit(
            action,
            outcome_of(status),
            identity=identity,
            target=entry.target if entry is not None else path,
            actor=entry.actor if entry is not None else "",
            actor_id=entry.actor_id if entry is not None else "",
            actor_role=entry.actor_role if entry is not None else "",
            actor_kind=entry.actor_kind if entry is not None else "",
            ip=publisher.ip(scope),
            detail=detail,
        )


def _action_of(scope: Scope, state: dict[str, Any], status: int) -> str | None:
    """The security event a finished request records, if any (module docstring)."""
    entry: AuditNote | None = state.get("audit")
    if entry is not None:
        return entry.action
    action = _operator_action(str(scope.get("method", "GET")), str(scope["path"]))
    if action is None and (status == 403 or (status == 401 and _has_credential(scope))):
        action = "auth.forbidden" if status == 403 else "auth.token_refused"
    return action


def _fingerprint(scope: Scope) -> str:
    """The first 16 hex of the credential's SHA-256 (as the rate limiter keys tokens)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            token = value.decode("latin-1").strip().removeprefix("Bearer ").strip()
            return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    return ""


async def announce_start(deps: Deps) -> None:
    """Record the configuration this gateway started with (what changed shows between two
    ``config.loaded`` entries; secrets appear only as whether they are set)."""
    publisher = SecurityPublisher(deps)
    s = deps.settings
    mode = (
        "disabled" if s.rate_limit_disabled else "emergency" if s.rate_limit_emergency else "normal"
    )
    detail = {
        "instance": s.instance_id,
        "env": s.env,
        "rate_limit_mode": mode,
        "allow_registration": str(s.allow_registration).lower(),
        "metrics_public": str(s.metrics_public).lower(),
        "jwt_secret_set": str(bool(s.jwt_secret)).lower(),
        "service_token_set": str(bool(s.api_token)).lower(),
    }
    for action in ("config.loaded", *([f"ratelimit.{mode}"] if mode != "normal" else [])):
        await publisher.emit(action, "success", actor="system", actor_kind="system", detail=detail)
