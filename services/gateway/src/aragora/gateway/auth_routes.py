"""``/api/auth/*``: register, login, refresh, logout, me, and the caller's API keys."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec
from litestar import Request, delete, get, post
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


def identity_of(request: Request[Any, Any, Any]) -> Identity | None:
    found = request.scope.get("state", {}).get("identity")
    return found if isinstance(found, Identity) else None


def _auth(deps: Deps) -> Authenticator:
    assert deps.auth is not None, "the authenticator is built in the app's lifespan"
    return deps.auth


def _decode(raw: bytes, shape: type[Any]) -> Any:
    try:
        return msgspec.json.decode(raw or b"{}", type=shape)
    except msgspec.DecodeError as exc:
        raise ClientException(f"invalid request body: {exc}") from None


async def _tokens(deps: Deps, user: accounts.User, family: str = "") -> dict[str, Any]:
    s = deps.settings
    access, claims = _auth(deps).keys.issue(
        user.id, user.role, user.token_version, s.access_token_ttl_seconds
    )
    now = time.time()
    refresh = await deps.readmodel.run(
        lambda cur: accounts.new_refresh_token(
            cur, user.id, s.refresh_token_ttl_seconds, now, family
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
    # Argon2 is slow by design: in a worker thread, not on the event loop or the DB thread.
    password_hash = await asyncio.to_thread(accounts.hash_password, body.password)
    try:
        user = await deps.readmodel.run(
            lambda cur: accounts.create_user(cur, email, password_hash, body.role)
        )
    except AccountError as exc:
        raise ClientException(str(exc), status_code=409) from None
    log.info("account created", extra={"user_id": user.id, "role": user.role})
    return {"user": user.public()}


@post("/api/auth/login", status_code=200, tags=["auth"])
async def login(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Email and password → an access token (JWT) and a refresh token."""
    deps: Deps = state.deps
    body: Credentials = _decode(await request.body(), Credentials)
    email = body.email.strip().lower()
    record = await deps.readmodel.run(lambda cur: accounts.login_record(cur, email))
    # The hash check runs in a worker thread, outside any transaction (see check_login).
    user = await asyncio.to_thread(accounts.check_login, record, body.password)
    if user is not None and record is not None and accounts.needs_rehash(record[1]):
        fresh = await asyncio.to_thread(accounts.hash_password, body.password)
        await deps.readmodel.run(lambda cur: accounts.set_password_hash(cur, user.id, fresh))
    if user is None:
        log.warning("login failed", extra={"outcome": "denied"})
        raise NotAuthorizedException("wrong email or password")
    log.info("login", extra={"user_id": user.id})
    return await _tokens(deps, user)


@post("/api/auth/refresh", status_code=200, tags=["auth"])
async def refresh(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """A refresh token → new tokens; the old refresh token is spent (rotation)."""
    deps: Deps = state.deps
    body: RefreshRequest = _decode(await request.body(), RefreshRequest)
    now = time.time()
    used = await deps.readmodel.run(
        lambda cur: accounts.use_refresh_token(cur, body.refresh_token, now)
    )
    if used is None:
        raise NotAuthorizedException("refresh token invalid, expired or already used")
    user_id, family = used
    user = await deps.readmodel.run(lambda cur: accounts.get_user(cur, user_id))
    if user is None or user.disabled:
        raise NotAuthorizedException("the account no longer exists or is disabled")
    return await _tokens(deps, user, family)


@post("/api/auth/logout", status_code=200, tags=["auth"])
async def logout(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """End every session of the caller: access tokens and refresh tokens stop working."""
    deps: Deps = state.deps
    caller = identity_of(request)
    assert caller is not None  # the auth middleware let only authenticated calls through
    if caller.kind != "user":
        raise ClientException("log out applies to login sessions; revoke API keys instead")

    def work(cur: Any) -> None:
        accounts.bump_token_version(cur, caller.subject)
        accounts.revoke_user_refresh_tokens(cur, caller.subject)

    await deps.readmodel.run(work)
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

    def work(cur: Any) -> tuple[str, dict[str, Any]]:
        user = accounts.get_user(cur, caller.subject)
        if user is None:
            raise AccountError("the account no longer exists")
        return accounts.create_api_key(cur, user, body.role or caller.role)

    try:
        key, record = await deps.readmodel.run(work)
    except AccountError as exc:
        raise PermissionDeniedException(str(exc)) from None
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
    revoked = await deps.readmodel.run(
        lambda cur: accounts.revoke_api_keys(cur, caller.subject, key_id)
    )
    _auth(deps).forget()
    log.info("api keys revoked", extra={"user_id": caller.subject, "count": revoked})
    return {"revoked": revoked}


ROUTES = [register, login, refresh, logout, me, create_api_key, list_api_keys, revoke_api_key]
