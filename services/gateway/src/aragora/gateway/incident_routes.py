"""The runbook's incident-response routes (admin or owner only, like all ``/api/admin/*``).

* ``POST /api/admin/revoke-token {"token_id"}`` — an access token by its ``jti`` (its
  refresh-token session ends too), or an API key with ``"kind": "api_key"``;
* ``GET /api/admin/revoked-tokens`` — the revocation list every replica enforces;
* ``POST /api/admin/revoke-all-tokens`` — every access and refresh token issued before
  now (``{"user_id"}`` / ``{"email"}``: one account's);
* ``POST /api/admin/rotate-keys`` — a new JWT signing key; tokens of the previous one stay
  valid ``ARAGORA_KEY_ROTATION_GRACE_SECONDS`` (or ``{"grace_seconds"}``); with
  ``{"user_id"}`` / ``{"email"}`` / ``{"all_api_keys": true}`` API keys are revoked too;
* ``POST /api/admin/force-password-reset`` — the account (``{"user_id"}`` / ``{"email"}``),
  or every account but the caller's, must set a new password; their sessions end.

Revocations take effect on every gateway replica within milliseconds (NATS KV, see
:mod:`aragora.gateway.revocation`); each action is recorded in the audit log.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.exceptions import ClientException, NotFoundException

from aragora.gateway import accounts
from aragora.gateway.auth_routes import _decode, identity_of, revoke_keys_everywhere
from aragora.gateway.deps import Deps
from aragora.gateway.revocation import TOKEN_ID, AuthState
from aragora.gateway.security_events import note


class RevokeToken(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    token_id: str
    kind: Literal["access_token", "api_key"] = "access_token"
    reason: str = ""


class AccountTarget(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    user_id: str | None = None
    email: str | None = None
    reason: str = ""


class RotateKeys(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    signing_key: bool = True
    grace_seconds: float | None = None
    user_id: str | None = None
    email: str | None = None
    all_api_keys: bool = False


def _state(deps: Deps) -> AuthState:
    if deps.auth is None or deps.auth.state is None:
        raise ClientException("revocation is not available on this gateway", status_code=503)
    return deps.auth.state


def _caller(request: Request[Any, Any, Any]) -> str:
    caller = identity_of(request)
    return (caller.email or caller.kind) if caller is not None else "unknown"


async def _body(request: Request[Any, Any, Any], shape: type[Any]) -> Any:
    raw = await request.body()
    return _decode(raw, shape) if raw.strip() else shape()


async def _account(deps: Deps, user_id: str | None, email: str | None) -> accounts.User | None:
    """The account a body names (None when it names none); 404 if it names an unknown one."""
    if not user_id and not email:
        return None
    if user_id:
        user = await deps.readmodel.run(lambda cur: accounts.get_user(cur, user_id))
    else:
        user = await deps.readmodel.run(lambda cur: accounts.user_by_email(cur, email or ""))
    if user is None:
        raise NotFoundException(f"no account {user_id or email}")
    return user


@post("/api/admin/revoke-token", status_code=200, tags=["admin"])
async def revoke_token(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Refuse one token everywhere: an access token's ``jti`` (its session's refresh
    tokens are revoked too) or, with ``"kind": "api_key"``, an API key's id."""
    deps: Deps = state.deps
    body: RevokeToken = _decode(await request.body(), RevokeToken)
    entry = note(request, "token.revoke", target=body.token_id[:128], detail={"kind": body.kind})
    if not TOKEN_ID.match(body.token_id):
        raise ClientException("token_id: 1 to 128 letters, digits, '-' or '_'")
    shared = _state(deps)
    by = _caller(request)
    if body.kind == "api_key":
        found = await deps.readmodel.run(lambda cur: accounts.revoke_api_key_id(cur, body.token_id))
        entry.detail["known"] = str(found).lower()
    else:
        families = await deps.readmodel.run(lambda cur: accounts.revoke_session(cur, body.token_id))
        entry.detail["refresh_families"] = str(families)
    revoked = await shared.revoke_token(
        body.token_id, body.kind, by=by, reason=body.reason or "revoked by an admin"
    )
    return {"revoked": msgspec.to_builtins(revoked)}


@get("/api/admin/revoked-tokens", tags=["admin"])
async def revoked_tokens(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """The revocation list every replica enforces: revoked token ids, not-before marks
    (revoke-all, logouts, forced resets) and the signing keys being retired."""
    deps: Deps = state.deps
    note(request, "token.list_revoked", target="revoked-tokens")
    return _state(deps).listing()


@post("/api/admin/revoke-all-tokens", status_code=200, tags=["admin"])
async def revoke_all_tokens(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Every access and refresh token issued before now stops working, the caller's
    included (the service token and API keys are not tokens: see rotate-keys)."""
    deps: Deps = state.deps
    body: AccountTarget = await _body(request, AccountTarget)
    entry = note(request, "token.revoke_all", target="all")
    shared = _state(deps)
    user = await _account(deps, body.user_id, body.email)
    reason = body.reason or "revoke-all-tokens"
    if user is None:
        await deps.readmodel.run(accounts.revoke_all_refresh_tokens)
        at = await shared.not_before(None, by=_caller(request), reason=reason)
    else:
        entry.target = user.id
        await deps.readmodel.run(lambda cur: accounts.end_sessions(cur, user.id))
        at = await shared.not_before(user.id, by=_caller(request), reason=reason)
    if deps.auth is not None:
        deps.auth.forget()
    return {
        "revoked": "all" if user is None else user.id,
        "not_before": at,
        "detail": "every access and refresh token issued before not_before is refused; "
        "log in again. API keys and the service token are unaffected.",
    }


@post("/api/admin/rotate-keys", status_code=200, tags=["admin"])
async def rotate_keys(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """A new JWT signing key (a new ``kid``); the previous one verifies tokens for the
    grace period, then refuses them. Optionally revokes API keys (one user's, or all)."""
    deps: Deps = state.deps
    body: RotateKeys = await _body(request, RotateKeys)
    entry = note(request, "keys.rotate", target="signing-key" if body.signing_key else "api-keys")
    shared = _state(deps)
    grace = deps.settings.key_rotation_grace_seconds
    grace = grace if body.grace_seconds is None else body.grace_seconds
    if grace < 0:
        raise ClientException("grace_seconds must be 0 or more")
    user = await _account(deps, body.user_id, body.email)
    result: dict[str, Any] = {}
    if body.signing_key:
        result["signing_key"] = await shared.rotate(grace)
        entry.detail.update(
            kid=result["signing_key"]["kid"],
            previous_kid=result["signing_key"]["previous_kid"],
            grace_seconds=str(grace),
        )
    key_ids: list[str] = []
    if body.all_api_keys:
        key_ids = await deps.readmodel.run(accounts.revoke_every_api_key)
    elif user is not None:
        key_ids = await deps.readmodel.run(lambda cur: accounts.revoke_api_keys(cur, user.id))
    await revoke_keys_everywhere(deps, key_ids, by=_caller(request), reason="rotate-keys")
    if body.all_api_keys or user is not None:
        entry.detail.update(
            api_keys_revoked=str(len(key_ids)), api_keys_of=user.id if user else "all"
        )
        result["api_keys_revoked"] = len(key_ids)
        result["detail"] = "the API keys' users create new ones (POST /api/auth/api-key)"
    if deps.auth is not None:
        deps.auth.forget()
    return result


@post("/api/admin/force-password-reset", status_code=200, tags=["admin"])
async def force_password_reset(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """The account (``user_id`` or ``email``), or every account but the caller's, must set a
    new password at its next login; every session of it ends now."""
    deps: Deps = state.deps
    body: AccountTarget = await _body(request, AccountTarget)
    entry = note(request, "account.force_password_reset", target="all")
    shared = _state(deps)
    caller = identity_of(request)
    user = await _account(deps, body.user_id, body.email)
    by = _caller(request)
    if user is not None:
        targets = [user.id]
        entry.target = user.id
    else:
        everyone = await deps.readmodel.run(accounts.user_ids)
        targets = [u for u in everyone if caller is None or u != caller.subject]

    def work(cur: Any) -> None:
        for user_id in targets:
            accounts.require_password_reset(cur, user_id, by)
            accounts.end_sessions(cur, user_id)

    await deps.readmodel.run(work)
    for user_id in targets:
        await shared.not_before(user_id, by=by, reason=body.reason or "force-password-reset")
    if deps.auth is not None:
        deps.auth.forget()
    entry.detail["accounts"] = str(len(targets))
    return {
        "accounts": len(targets),
        "user_ids": targets if len(targets) <= 100 else targets[:100],
        "detail": "their sessions ended; each must set a new password with "
        "POST /api/auth/password {email, password, new_password} before logging in",
    }


ROUTES = [revoke_token, revoked_tokens, revoke_all_tokens, rotate_keys, force_password_reset]
