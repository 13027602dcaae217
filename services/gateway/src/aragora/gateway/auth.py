"""Who is calling, and may they: authentication and the route policy, in one middleware.

A request is authenticated by ``Authorization: Bearer <credential>`` (WebSocket clients may
pass ``?token=`` instead, as browsers cannot set headers there). A credential is one of:

* the service token ARAGORA_API_TOKEN (owner rights; ``aragora serve`` generates one into
  the data dir and the CLI reads it from there);
* an API key (``ara_…``; its user, with the key's role, never above the user's);
* a JWT access token (``POST /api/auth/login``), checked for signature, expiry, issuer,
  audience and the user's token version (logout everywhere).

Revocations (a token's ``jti``, an API key, "every token issued before T", of everyone or
of one user) and retired signing keys come from the KV bucket every replica watches
(:class:`aragora.gateway.revocation.AuthState`): checked in memory on every request.

Policy (:func:`required_role`): public routes need nothing; ``/api/system/*``,
``/api/admin/*``, ``/api/debug/*`` and breaker resets need ``admin`` (or ``owner``); any
other route needs a valid credential, and writes need at least ``member`` (``viewer`` is
read-only). No credential → 401 with ``WWW-Authenticate: Bearer``; a valid credential
without the rights → 403. The identity is stored in the ASGI scope's state
(``scope["state"]["identity"]``) for handlers and the rate limiter.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import msgspec
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from aragora.gateway import accounts
from aragora.gateway.accounts import Role, User
from aragora.gateway.tokens import KeyRing, TokenError

if TYPE_CHECKING:
    from aragora.gateway.revocation import AuthState
from aragora.runtime.logs import correlation_id_var

CACHE_SECONDS = 5.0  # how stale a user's token version / an API key lookup may be

_PUBLIC = frozenset(
    {
        "/api/health",
        "/api/health/live",
        "/api/health/ready",
        "/healthz",
        "/readyz",
        "/api/auth/login",
        "/api/auth/register",
        "/api/auth/refresh",
        "/api/auth/password",  # a forced password reset: the account cannot log in first
        "/api/receipts/public-key",
        "/api/openapi.json",  # the API's shape, no data: readable before logging in
        "/ui",  # the web UI's page shells (no data: the page calls the API with a token)
        "/admin",
        "/portal",
    }
)
# The docs UI and the web UI's pages and assets (a browser cannot send a bearer token on
# a page load); nothing under /ui/ serves data.
_PUBLIC_PREFIXES = ("/api/docs", "/ui/")
_METRICS = frozenset({"/metrics", "/api/metrics"})
_ADMIN_PREFIXES = ("/api/system/", "/api/admin/", "/api/debug/")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated caller. ``kind``: ``user`` (JWT), ``api_key`` or ``service``."""

    subject: str  # user id, or "service"
    role: Role
    kind: str
    email: str = ""
    token_id: str = ""  # the JWT's jti or the API key's id
    issued_at: float = 0.0  # a JWT's iat
    kid: str = ""  # the key that signed a JWT

    @property
    def is_admin(self) -> bool:
        return accounts.rank(self.role) >= accounts.rank("admin")

    def public(self) -> dict[str, Any]:
        return {
            "id": self.subject,
            "email": self.email,
            "role": self.role,
            "auth": self.kind,
        }


def required_role(method: str, path: str, metrics_public: bool) -> Role | None:
    """The least role a request needs; None for a public route."""
    if path in _PUBLIC or path.startswith(_PUBLIC_PREFIXES):
        return None
    if metrics_public and path in _METRICS:
        return None
    if path.startswith(_ADMIN_PREFIXES) or path.endswith("/reset-circuit"):
        return "admin"
    if method.upper() in _READ_METHODS or path in ("/api/auth/logout", "/api/auth/api-key"):
        return "viewer"  # reading, and managing one's own session and keys
    return "member"


UserLoader = Callable[[str], Awaitable[User | None]]
KeyLoader = Callable[[str], Awaitable[tuple[User, Role, str] | None]]


class Authenticator:
    """Turns a bearer credential into an :class:`Identity` (or says why not)."""

    def __init__(
        self,
        keys: KeyRing,
        service_token: str,
        load_user: UserLoader,
        load_key: KeyLoader,
        clock: Callable[[], float] = time.monotonic,
        state: AuthState | None = None,
    ) -> None:
        self.keys = keys
        self.state = state  # revocations and the shared key ring (None: tests of parts)
        self._service_token = service_token
        self._load_user = load_user
        self._load_key = load_key
        self._clock = clock
        self._users: dict[str, tuple[float, User | None]] = {}
        self._api_keys: dict[str, tuple[float, tuple[User, Role, str] | None]] = {}

    def forget(self) -> dict[str, int]:
        """Drop cached lookups (after a logout, a key revocation, a role change)."""
        dropped = {"auth_users": len(self._users), "auth_api_keys": len(self._api_keys)}
        self._users.clear()
        self._api_keys.clear()
        return dropped

    async def _user(self, user_id: str) -> User | None:
        hit = self._users.get(user_id)
        if hit is not None and self._clock() - hit[0] < CACHE_SECONDS:
            return hit[1]
        user = await self._load_user(user_id)
        self._users[user_id] = (self._clock(), user)
        return user

    async def identify(self, credential: str) -> Identity:
        """The caller behind ``credential``; :class:`TokenError` says why it is refused."""
        if self._service_token and hmac.compare_digest(
            credential.encode(), self._service_token.encode()
        ):
            return Identity(subject="service", role="owner", kind="service")
        if credential.startswith(accounts.API_KEY_PREFIX):
            digest = accounts.sha256(credential)
            hit = self._api_keys.get(digest)
            if hit is None or self._clock() - hit[0] >= CACHE_SECONDS:
                hit = (self._clock(), await self._load_key(credential))
                self._api_keys[digest] = hit
            if hit[1] is None:
                raise TokenError("unknown or revoked API key")
            owner, role, key_id = hit[1]
            if self.state is not None and self.state.refusal("api_key", key_id, owner.id, 0.0):
                raise TokenError("API key revoked")
            return Identity(
                subject=owner.id, role=role, kind="api_key", email=owner.email, token_id=key_id
            )
        claims, kid = self.keys.verify(credential)
        if self.state is not None:
            refused = self.state.refusal("user", claims.jti, claims.sub, claims.iat, kid)
            if refused:
                raise TokenError(refused)
        user = await self._user(claims.sub)
        if user is None or user.disabled:
            raise TokenError("the token's account no longer exists or is disabled")
        if claims.tv != user.token_version:
            raise TokenError("token revoked (logged out)")
        return Identity(
            subject=user.id,
            role=user.role,
            kind="user",
            email=user.email,
            token_id=claims.jti,
            issued_at=claims.iat,
            kid=kid,
        )

    def refusal(self, identity: Identity) -> str | None:
        """Why an identity accepted earlier is revoked now (None: still good).

        For long-lived connections (WebSocket): call it from an
        :meth:`AuthState.add_listener` callback and close the refused ones."""
        if self.state is None:
            return None
        return self.state.refusal(
            identity.kind, identity.token_id, identity.subject, identity.issued_at, identity.kid
        )


def bearer(scope: Scope) -> str:
    """The credential of a request: the Bearer header, or ``?token=`` on a WebSocket."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text = value.decode("latin-1").strip()
            if text[:7].lower() == "bearer ":
                return text[7:].strip()
    if scope["type"] == ScopeType.WEBSOCKET:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return query.get("token", [""])[0]
    return ""


class AuthMiddleware(ASGIMiddleware):
    """Authenticate every request and apply :func:`required_role` before any handler."""

    def __init__(self, get_auth: Callable[[], Authenticator | None], metrics_public: bool) -> None:
        self._get_auth = get_auth
        self._metrics_public = metrics_public

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["type"] not in (ScopeType.HTTP, ScopeType.WEBSOCKET):
            await next_app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        needed = required_role(method, scope["path"], self._metrics_public)
        credential = bearer(scope)
        identity: Identity | None = None
        problem = ""
        auth = self._get_auth()
        if credential and auth is not None:
            try:
                identity = await auth.identify(credential)
            except TokenError as exc:
                problem = str(exc)
        state = scope.setdefault("state", {})
        state["identity"] = identity
        if needed is None:
            await next_app(scope, receive, send)
            return
        if identity is None and not credential and scope["type"] == ScopeType.WEBSOCKET:
            state["auth_pending"] = True  # the stream reads {"type": "auth", …} first
            await next_app(scope, receive, send)
            return
        if identity is None:
            detail = problem or "authentication required: send Authorization: Bearer <token>"
            await _refuse(scope, receive, send, 401, "unauthorized", detail)
            return
        if accounts.rank(identity.role) < accounts.rank(needed):
            detail = f"this needs the {needed} role (you are {identity.role})"
            await _refuse(scope, receive, send, 403, "forbidden", detail)
            return
        await next_app(scope, receive, send)


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str
) -> None:
    if scope["type"] == ScopeType.WEBSOCKET:
        await receive()  # the websocket.connect message
        # 4401/4403: the HTTP meaning in the 4xxx application range (RFC 6455 §7.4.2).
        close: Any = {"type": "websocket.close", "code": 4000 + status, "reason": detail[:120]}
        await send(close)
        return
    body = msgspec.json.encode(
        {
            "error": detail,
            "code": code,
            "detail": detail,
            "status_code": status,
            "correlation_id": correlation_id_var.get(),
        }
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="aragora"'))
    start: Any = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)
