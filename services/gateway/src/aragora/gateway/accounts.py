"""Accounts: users, refresh tokens and API keys, in the gateway's database.

SQLite in the embedded default, PostgreSQL when ARAGORA_DATABASE_URL says so (shared by
every gateway replica). Passwords are hashed with Argon2id (memory-hard; parameters of
argon2-cffi's RFC 9106 low-memory profile, re-hashed on login when they change). Refresh
tokens and API keys are stored only as SHA-256 hashes: they are long random strings, so a
fast hash is enough, and a database dump reveals none of them.

Every function here takes a DB-API cursor (qmark placeholders) and runs inside the read
model's transaction (:meth:`aragora.gateway.readmodel.ReadModel.run`).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

Role = Literal["owner", "admin", "member", "viewer"]
ROLES: tuple[Role, ...] = ("viewer", "member", "admin", "owner")  # ascending rights
API_KEY_PREFIX = "ara_"
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256

_hasher = PasswordHasher()

DDL = [
    """CREATE TABLE IF NOT EXISTS gw_users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        token_version INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS gw_refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        jti TEXT NOT NULL,
        family TEXT NOT NULL,
        user_id TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        used_at DOUBLE PRECISION,
        revoked INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS gw_refresh_family ON gw_refresh_tokens (family)",
    """CREATE TABLE IF NOT EXISTS gw_api_keys (
        key_hash TEXT PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        user_id TEXT NOT NULL,
        prefix TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT)""",
    "CREATE INDEX IF NOT EXISTS gw_api_keys_user ON gw_api_keys (user_id)",
    "CREATE INDEX IF NOT EXISTS gw_refresh_jti ON gw_refresh_tokens (jti)",
    # Accounts whose next login must set a new password (POST /api/admin/force-password-reset).
    """CREATE TABLE IF NOT EXISTS gw_password_resets (
        user_id TEXT PRIMARY KEY,
        requested_at TEXT NOT NULL,
        requested_by TEXT NOT NULL)""",
]


class AccountError(ValueError):
    """A request the account rules refuse; the message is safe to show."""


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    email: str
    role: Role
    created_at: str
    disabled: bool = False
    token_version: int = 0

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "role": self.role,
            "created_at": self.created_at,
        }


def rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else -1


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > 254 or " " in email:
        raise AccountError(f"not an email address: {email[:80]!r}")
    return email


def check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise AccountError(
            f"the password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


_USER_COLUMNS = "id, email, role, created_at, disabled, token_version"


def _user(row: Any) -> User:
    return User(
        id=row[0],
        email=row[1],
        role=row[2],
        created_at=row[3],
        disabled=bool(row[4]),
        token_version=int(row[5]),
    )


def create_user(cur: Any, email: str, password_hash: str, role: Role) -> User:
    """A new account; :class:`AccountError` if the email is taken."""
    cur.execute("SELECT 1 FROM gw_users WHERE email = ?", (email,))
    if cur.fetchone() is not None:
        raise AccountError(f"an account for {email} exists already")
    user = User(id=str(uuid.uuid4()), email=email, role=role, created_at=_now())
    cur.execute(
        "INSERT INTO gw_users (id, email, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?)",
        (user.id, user.email, password_hash, user.role, user.created_at),
    )
    return user


def user_by_email(cur: Any, email: str) -> User | None:
    cur.execute(f"SELECT {_USER_COLUMNS} FROM gw_users WHERE email = ?", (email.strip().lower(),))
    row = cur.fetchone()
    return _user(row) if row else None


def user_ids(cur: Any) -> list[str]:
    cur.execute("SELECT id FROM gw_users ORDER BY created_at")
    return [str(r[0]) for r in cur.fetchall()]


def get_user(cur: Any, user_id: str) -> User | None:
    cur.execute(f"SELECT {_USER_COLUMNS} FROM gw_users WHERE id = ?", (user_id,))
    row = cur.fetchone()
    return _user(row) if row else None


def count_users(cur: Any) -> int:
    cur.execute("SELECT count(*) FROM gw_users")
    return int(cur.fetchone()[0])


def login_record(cur: Any, email: str) -> tuple[User, str] | None:
    """The account and its password hash (checked by :func:`check_login`, off this cursor)."""
    cur.execute(f"SELECT {_USER_COLUMNS}, password_hash FROM gw_users WHERE email = ?", (email,))
    row = cur.fetchone()
    return (_user(row), str(row[6])) if row else None


def check_login(record: tuple[User, str] | None, password: str) -> User | None:
    """The user if ``password`` matches an enabled account, else None.

    Argon2 is slow on purpose: call this in a worker thread, never on the event loop or
    inside a database transaction. An unknown email costs the same work as a wrong
    password (no account enumeration by timing).
    """
    if record is None:
        _hasher.hash(password)
        return None
    user, stored = record
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return None if user.disabled else user


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def set_password_hash(cur: Any, user_id: str, password_hash: str) -> None:
    cur.execute("UPDATE gw_users SET password_hash = ? WHERE id = ?", (password_hash, user_id))


def require_password_reset(cur: Any, user_id: str, by: str) -> None:
    """The next login of ``user_id`` must set a new password (``POST /api/auth/password``)."""
    cur.execute(
        "INSERT INTO gw_password_resets (user_id, requested_at, requested_by) VALUES (?, ?, ?) "
        "ON CONFLICT (user_id) DO UPDATE SET requested_at = excluded.requested_at, "
        "requested_by = excluded.requested_by",
        (user_id, _now(), by),
    )


def password_reset_required(cur: Any, user_id: str) -> bool:
    cur.execute("SELECT 1 FROM gw_password_resets WHERE user_id = ?", (user_id,))
    return cur.fetchone() is not None


def clear_password_reset(cur: Any, user_id: str) -> None:
    cur.execute("DELETE FROM gw_password_resets WHERE user_id = ?", (user_id,))


def end_sessions(cur: Any, user_id: str) -> None:
    """Every access token (token version) and refresh token of the user stops working."""
    bump_token_version(cur, user_id)
    revoke_user_refresh_tokens(cur, user_id)


def bump_token_version(cur: Any, user_id: str) -> None:
    """Invalidate every access token the user holds (logout everywhere)."""
    cur.execute("UPDATE gw_users SET token_version = token_version + 1 WHERE id = ?", (user_id,))


# --- refresh tokens ---------------------------------------------------------------------------


def new_refresh_token(
    cur: Any, user_id: str, ttl: int, now: float, family: str = "", jti: str = ""
) -> str:
    """A fresh refresh token (returned once; stored hashed) in ``family`` (new if empty).

    ``jti`` is the access token issued with it, so revoking that token by its id also ends
    the session it belongs to (:func:`revoke_session`)."""
    token = "art_" + secrets.token_urlsafe(32)
    cur.execute(
        "INSERT INTO gw_refresh_tokens (token_hash, jti, family, user_id, expires_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (sha256(token), jti or str(uuid.uuid4()), family or str(uuid.uuid4()), user_id, now + ttl),
    )
    return token


def revoke_session(cur: Any, jti: str) -> int:
    """Revoke the refresh-token family issued with access token ``jti``; how many tokens."""
    cur.execute("SELECT DISTINCT family FROM gw_refresh_tokens WHERE jti = ?", (jti,))
    families = [str(r[0]) for r in cur.fetchall()]
    for family in families:
        revoke_family(cur, family)
    return len(families)


def revoke_all_refresh_tokens(cur: Any) -> None:
    cur.execute("UPDATE gw_refresh_tokens SET revoked = 1 WHERE revoked = 0")


def use_refresh_token(cur: Any, token: str, now: float) -> tuple[str, str] | None:
    """(user id, family) of a valid, unused refresh token, now marked used; else None.

    A token presented twice means it was stolen or replayed: its whole family is revoked,
    so the thief's and the owner's later refreshes both fail and the user logs in again.
    """
    cur.execute(
        "SELECT user_id, family, expires_at, used_at, revoked FROM gw_refresh_tokens "
        "WHERE token_hash = ?",
        (sha256(token),),
    )
    row = cur.fetchone()
    if row is None:
        return None
    user_id, family, expires_at, used_at, revoked = row
    if used_at is not None:
        revoke_family(cur, family)
        return None
    if revoked or expires_at < now:
        return None
    cur.execute(
        "UPDATE gw_refresh_tokens SET used_at = ? WHERE token_hash = ?", (now, sha256(token))
    )
    return str(user_id), str(family)


def revoke_family(cur: Any, family: str) -> None:
    cur.execute("UPDATE gw_refresh_tokens SET revoked = 1 WHERE family = ?", (family,))


def revoke_user_refresh_tokens(cur: Any, user_id: str) -> None:
    cur.execute("UPDATE gw_refresh_tokens SET revoked = 1 WHERE user_id = ?", (user_id,))


# --- API keys ---------------------------------------------------------------------------------


def create_api_key(cur: Any, user: User, role: Role) -> tuple[str, dict[str, Any]]:
    """(the key, shown once; its public record). The key's role is at most the user's."""
    if rank(role) > rank(user.role):
        raise AccountError(f"an API key cannot have more rights ({role}) than its user")
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    record = {
        "id": str(uuid.uuid4()),
        "prefix": key[:12],
        "role": role,
        "created_at": _now(),
    }
    cur.execute(
        "INSERT INTO gw_api_keys (key_hash, id, user_id, prefix, role, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (sha256(key), record["id"], user.id, record["prefix"], role, record["created_at"]),
    )
    return key, record


def list_api_keys(cur: Any, user_id: str) -> list[dict[str, Any]]:
    cur.execute(
        "SELECT id, prefix, role, created_at FROM gw_api_keys "
        "WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at",
        (user_id,),
    )
    return [{"id": r[0], "prefix": r[1], "role": r[2], "created_at": r[3]} for r in cur.fetchall()]


def revoke_api_keys(cur: Any, user_id: str, key_id: str | None = None) -> list[str]:
    """Revoke one of the user's keys (by id), or all of them; returns their ids."""
    before = list_api_keys(cur, user_id)
    targets = [k["id"] for k in before if key_id is None or k["id"] == key_id]
    for target in targets:
        cur.execute("UPDATE gw_api_keys SET revoked_at = ? WHERE id = ?", (_now(), target))
    return targets


def revoke_api_key_id(cur: Any, key_id: str) -> bool:
    """Revoke the live API key ``key_id`` of whichever user; whether there was one."""
    cur.execute("SELECT 1 FROM gw_api_keys WHERE id = ? AND revoked_at IS NULL", (key_id,))
    if cur.fetchone() is None:
        return False
    cur.execute("UPDATE gw_api_keys SET revoked_at = ? WHERE id = ?", (_now(), key_id))
    return True


def revoke_every_api_key(cur: Any) -> list[str]:
    """Revoke every live API key of every user; returns their ids."""
    cur.execute("SELECT id FROM gw_api_keys WHERE revoked_at IS NULL")
    targets = [str(r[0]) for r in cur.fetchall()]
    cur.execute("UPDATE gw_api_keys SET revoked_at = ? WHERE revoked_at IS NULL", (_now(),))
    return targets


def lookup_api_key(cur: Any, key: str) -> tuple[User, Role, str] | None:
    """(user, key role, key id) of a live key whose user is enabled; else None."""
    cur.execute(
        "SELECT user_id, role, id FROM gw_api_keys WHERE key_hash = ? AND revoked_at IS NULL",
        (sha256(key),),
    )
    row = cur.fetchone()
    if row is None:
        return None
    user = get_user(cur, row[0])
    if user is None or user.disabled:
        return None
    role: Role = row[1] if rank(row[1]) <= rank(user.role) else user.role
    return user, role, str(row[2])
