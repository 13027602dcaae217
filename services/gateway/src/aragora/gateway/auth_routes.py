"""``/api/auth/*``: register, login, refresh, logout, password, me, and the caller's API keys.

Each handler notes what it did for the audit log (:func:`security_events.note`); the audit
middleware adds who, from where and the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    PermissionDeniedException,
)

from aragora.gateway import accounts
from aragora.gateway.accounts import AccountError, Role
from aragora.gateway.auth import Authenticator, Identity
from aragora.gateway.deps import Deps
from aragora.gateway.revocation import AuthState
from aragora.gateway.security_events import AuditNote, note
from aragora.runtime.logs import correlation_id_var

log = logging.getLogger("aragora.gateway.auth")


class Credentials(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: str
    password: str


class Registration(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: str
    password: str
    role: Role = "member"


class RefreshRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    refresh_token: str


class ApiKeyRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    role: Role | None = None


class ApiKeyRevoke(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: str | None = None


class PasswordChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: str
    password: str
    new_password: str


PASSWORD_RESET_REQUIRED = "password_reset_required"  # noqa: S105 (an error code)


def identity_of(request: Request[Any, Any, Any]) -> Identity | None:
    found = request.scope.get("state", {}).get("identity")
    return found if isinstance(found, Identity) else None


def _auth(deps: Deps) -> Authenticator:
    assert deps.auth is not None, "the authenticator is built in the app's lifespan"
    return deps.auth


def _state(deps: Deps) -> AuthState | None:
    return _auth(deps).state


def _decode(raw: bytes, shape: type[Any]) -> Any:
    try:
        return msgspec.json.decode(raw or b"{}", type=shape)
    except msgspec.DecodeError as exc:
        raise ClientException(f"invalid request body: {exc}") from None


async def _tokens(
    deps: Deps, user: accounts.User, entry: AuditNote, family: str = ""
) -> dict[str, Any]:
    s = deps.settings
    access, claims = _auth(deps).keys.issue(
        user.id, user.role, user.token_version, s.access_token_ttl_seconds
    )
    entry.actor, entry.actor_id, entry.target = user.email, user.id, claims.jti
    entry.actor_role, entry.actor_kind = user.role, "user"
    entry.detail["kid"] = _auth(deps).keys.current_kid
    now = time.time()
    refresh = await deps.readmodel.run(
        lambda cur: accounts.new_refresh_token(
            cur, user.id, s.refresh_token_ttl_seconds, now, family, jti=claims.jti
        )
    )
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": s.access_token_ttl_seconds,
        "expires_at": claims.exp,
        "refresh_token": refresh,
        "user": user.public(),
    }


@post("/api/auth/register", status_code=201, tags=["auth"])
async def register(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Create an account. Open registration makes members; admins may set a role (≤ own)."""
    deps: Deps = state.deps
    body: Registration = _decode(await request.body(), Registration)
    caller = identity_of(request)
    if caller is None or not caller.is_admin:
        if not deps.settings.allow_registration:
            raise NotAuthorizedException("registration is closed: ask an admin for an account")
        if body.role != "member":
            raise PermissionDeniedException("only admins can create accounts with another role")
    elif accounts.rank(body.role) > accounts.rank(caller.role):
        raise PermissionDeniedException(f"you cannot grant {body.role} (you are {caller.role})")
    try:
        email = accounts.normalize_email(body.email)
        accounts.check_password(body.password)
    except AccountError as exc:
        raise ClientException(str(exc)) from None
    entry = note(request, "account.create", target=email, detail={"role": body.role})
    # Argon2 is slow by design: in a worker thread, not on the event loop or the DB thread.
    password_hash = await asyncio.to_thread(accounts.hash_password, body.password)
    try:
        user = await deps.readmodel.run(
            lambda cur: accounts.create_user(cur, email, password_hash, body.role)
        )
    except AccountError as exc:
        raise ClientException(str(exc), status_code=409) from None
    entry.detail["user_id"] = user.id
    log.info("account created", extra={"user_id": user.id, "role": user.role})
    return {"user": user.public()}


@post("/api/auth/login", status_code=200, tags=["auth"])
async def login(request: Request[Any, Any, Any], state: State) -> Response[dict[str, Any]]:
    """Email and password → an access token (JWT) and a refresh token.

    An account an admin marked for a password reset gets 403 ``password_reset_required``
    (only with the right password): set a new one with ``POST /api/auth/password``."""
    deps: Deps = state.deps
    body: Credentials = _decode(await request.body(), Credentials)
    email = body.email.strip().lower()
    entry = note(request, "auth.login", actor=email[:254])
    record = await deps.readmodel.run(lambda cur: accounts.login_record(cur, email))
    # The hash check runs in a worker thread, outside any transaction (see check_login).
    user = await asyncio.to_thread(accounts.check_login, record, body.password)
    if user is not None and record is not None and accounts.needs_rehash(record[1]):
        fresh = await asyncio.to_thread(accounts.hash_password, body.password)
        await deps.readmodel.run(lambda cur: accounts.set_password_hash(cur, user.id, fresh))
    if user is None:
        log.warning("login failed", extra={"outcome": "denied"})
        raise NotAuthorizedException("wrong email or password")
    if await deps.readmodel.run(lambda cur: accounts.password_reset_required(cur, user.id)):
        entry.actor_id, entry.detail["reason"] = user.id, PASSWORD_RESET_REQUIRED
        detail = "an admin requires a new password: POST /api/auth/password"
        return Response(
            {
                "error": detail,
                "code": PASSWORD_RESET_REQUIRED,
                "detail": detail,
                "status_code": 403,
                "correlation_id": correlation_id_var.get(),
            },
            status_code=403,
        )
    log.info("login", extra={"user_id": user.id})
    return Response(await _tokens(deps, user, entry), status_code=200)


@post("/api/auth/password", status_code=200, tags=["auth"])
async def change_password(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Email, current password and a new one: sets it, clears a forced reset and ends
    every session of the account (log in again with the new password)."""
    deps: Deps = state.deps
    body: PasswordChange = _decode(await request.body(), PasswordChange)
    email = body.email.strip().lower()
    entry = note(request, "auth.password_change", actor=email[:254])
    try:
        accounts.check_password(body.new_password)
    except AccountError as exc:
        raise ClientException(str(exc)) from None
    if body.new_password == body.password:
        raise ClientException("the new password must differ from the current one")
    record = await deps.readmodel.run(lambda cur: accounts.login_record(cur, email))
    user = await asyncio.to_thread(accounts.check_login, record, body.password)
    if user is None:
        raise NotAuthorizedException("wrong email or password")
    entry.actor_id = entry.target = user.id
    fresh = await asyncio.to_thread(accounts.hash_password, body.new_password)

    def work(cur: Any) -> None:
        accounts.set_password_hash(cur, user.id, fresh)
        accounts.clear_password_reset(cur, user.id)
        accounts.end_sessions(cur, user.id)

    await deps.readmodel.run(work)
    if (shared := _state(deps)) is not None:
        await shared.not_before(user.id, by=user.email, reason="password changed")
    _auth(deps).forget()
    return {"password_changed": True, "user": user.public()}


@post("/api/auth/refresh", status_code=200, tags=["auth"])
async def refresh(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """A refresh token → new tokens; the old refresh token is spent (rotation)."""
    deps: Deps = state.deps
    body: RefreshRequest = _decode(await request.body(), RefreshRequest)
    now = time.time()
    entry = note(request, "token.refresh")
    used = await deps.readmodel.run(
        lambda cur: accounts.use_refresh_token(cur, body.refresh_token, now)
    )
    if used is None:
        raise NotAuthorizedException("refresh token invalid, expired or already used")
    user_id, family = used
    entry.actor_id = user_id
    user = await deps.readmodel.run(lambda cur: accounts.get_user(cur, user_id))
    if user is None or user.disabled:
        raise NotAuthorizedException("the account no longer exists or is disabled")
    return await _tokens(deps, user, entry, family)


@post("/api/auth/logout", status_code=200, tags=["auth"])
async def logout(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """End every session of the caller: access tokens and refresh tokens stop working."""
    deps: Deps = state.deps
    caller = identity_of(request)
    assert caller is not None  # the auth middleware let only authenticated calls through
    note(request, "auth.logout", target=caller.token_id)
    if caller.kind != "user":
        raise ClientException("log out applies to login sessions; revoke API keys instead")
    await deps.readmodel.run(lambda cur: accounts.end_sessions(cur, caller.subject))
    if (shared := _state(deps)) is not None:
        # Every replica refuses the caller's tokens at once (the token version above is
        # the backstop, seen by other replicas within the user cache's 5 seconds).
        await shared.not_before(caller.subject, by=caller.email, reason="logout")
    _auth(deps).forget()
    log.info("logout", extra={"user_id": caller.subject})
    return {"logged_out": True}


@get("/api/auth/me", tags=["auth"])
async def me(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The caller: id, email, role, and how it authenticated."""
    caller = identity_of(request)
    assert caller is not None
    return {"user": caller.public()}


def _user_caller(request: Request[Any, Any, Any]) -> Identity:
    caller = identity_of(request)
    assert caller is not None
    if caller.kind == "service":
        raise ClientException("the service token has no user: log in as a user to manage keys")
    return caller


@post("/api/auth/api-key", status_code=201, tags=["auth"])
async def create_api_key(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """A new API key for the caller, shown this once (only its hash is stored)."""
    deps: Deps = state.deps
    caller = _user_caller(request)
    raw = await request.body()
    body: ApiKeyRequest = _decode(raw, ApiKeyRequest) if raw else ApiKeyRequest()
    entry = note(request, "api_key.create")

    def work(cur: Any) -> tuple[str, dict[str, Any]]:
        user = accounts.get_user(cur, caller.subject)
        if user is None:
            raise AccountError("the account no longer exists")
        return accounts.create_api_key(cur, user, body.role or caller.role)

    try:
        key, record = await deps.readmodel.run(work)
    except AccountError as exc:
        raise PermissionDeniedException(str(exc)) from None
    entry.target, entry.detail["role"] = record["id"], record["role"]
    log.info("api key created", extra={"user_id": caller.subject, "key_id": record["id"]})
    return {
        "api_key": key,
        **record,
        "note": "store this key now: it is not shown again",
    }


@get("/api/auth/api-key", tags=["auth"])
async def list_api_keys(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """The caller's live API keys (id, prefix, role; never the key)."""
    deps: Deps = state.deps
    caller = _user_caller(request)
    keys = await deps.readmodel.run(lambda cur: accounts.list_api_keys(cur, caller.subject))
    return {"api_keys": keys}


@delete("/api/auth/api-key", status_code=200, tags=["auth"])
async def revoke_api_key(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Revoke the caller's API key named by ``id`` (body or query), or all of them."""
    deps: Deps = state.deps
    caller = _user_caller(request)
    raw = await request.body()
    key_id = request.query_params.get("id") or (_decode(raw, ApiKeyRevoke).id if raw else None)
    entry = note(request, "api_key.delete", target=key_id or "all")
    revoked = await deps.readmodel.run(
        lambda cur: accounts.revoke_api_keys(cur, caller.subject, key_id)
    )
    await revoke_keys_everywhere(deps, revoked, by=caller.email, reason="deleted by its user")
    entry.detail["count"] = str(len(revoked))
    _auth(deps).forget()
    log.info("api keys revoked", extra={"user_id": caller.subject, "count": len(revoked)})
    return {"revoked": len(revoked)}


async def revoke_keys_everywhere(deps: Deps, key_ids: list[str], *, by: str, reason: str) -> None:
    """Tell every replica at once (their 5-second key cache would otherwise lag)."""
    shared = _state(deps)
    if shared is None:
        return
    for key_id in key_ids:
        await shared.revoke_token(key_id, "api_key", by=by, reason=reason)


ROUTES = [
    register,
    login,
    change_password,
    refresh,
    logout,
    me,
    create_api_key,
    list_api_keys,
    revoke_api_key,
]
