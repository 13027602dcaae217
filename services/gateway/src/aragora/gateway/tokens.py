"""JWT access tokens: HS256 only, ``kid`` in the header, every registered claim checked.

An access token carries ``sub`` (user id), ``role``, ``tv`` (the user's token version:
logging out everywhere bumps it), ``iss``/``aud`` (fixed), ``iat``, ``exp`` and a unique
``jti``. Verification pins the algorithm (a token that says ``none`` or RS256 is refused)
and looks the key up by ``kid`` in a key ring, so a new signing key can be introduced
while tokens signed by the previous one stay valid until they expire.

The secret comes from ARAGORA_JWT_SECRET; outside production, when it is unset, one is
generated once into ``ARAGORA_DATA_DIR/jwt-secret`` (mode 0600) and reused, and the log
says so. Neither the secret nor tokens are ever logged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import msgspec

from aragora.runtime.settings import Settings, SettingsError

log = logging.getLogger("aragora.gateway.auth")

ALGORITHM = "HS256"
ISSUER = "aragora"
AUDIENCE = "aragora-api"
SECRET_FILE = "jwt-secret"  # noqa: S105 (a file name, not a secret)


class Claims(msgspec.Struct, frozen=True, kw_only=True):
    sub: str
    role: str
    tv: int
    jti: str
    exp: int
    iat: int


class TokenError(Exception):
    """Why a token was refused (safe to show: never contains the token)."""


def key_id(secret: str) -> str:
    """A stable, non-reversible name for a key (first 12 hex of SHA-256 of it)."""
    return hashlib.sha256(b"aragora-kid:" + secret.encode()).hexdigest()[:12]


def load_secret(settings: Settings) -> str:
    if settings.jwt_secret:
        return settings.jwt_secret
    if settings.env == "production":
        raise SettingsError("ARAGORA_JWT_SECRET is required when ARAGORA_ENV=production")
    path = settings.data_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    _write_private(path, secret)
    log.warning(
        "ARAGORA_JWT_SECRET is not set: generated a signing key into %s (set "
        "ARAGORA_JWT_SECRET, 32+ characters, in production)",
        path,
    )
    return secret


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


class KeyRing:
    """The key that signs new tokens, and every key still accepted, by ``kid``."""

    def __init__(self, current: str, previous: list[str] | None = None) -> None:
        self.current_kid = key_id(current)
        self._keys = {key_id(k): k for k in [*(previous or []), current]}

    def issue(self, user_id: str, role: str, token_version: int, ttl: int) -> tuple[str, Claims]:
        now = int(time.time())
        claims = Claims(
            sub=user_id, role=role, tv=token_version, jti=str(uuid.uuid4()), iat=now, exp=now + ttl
        )
        payload: dict[str, Any] = {**msgspec.to_builtins(claims), "iss": ISSUER, "aud": AUDIENCE}
        token = jwt.encode(
            payload,
            self._keys[self.current_kid],
            algorithm=ALGORITHM,
            headers={"kid": self.current_kid},
        )
        return token, claims

    def verify(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise TokenError(f"token algorithm must be {ALGORITHM}")
        secret = self._keys.get(str(header.get("kid", "")))
        if secret is None:
            raise TokenError("token signed by an unknown key")
        try:
            payload = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"invalid token: {type(exc).__name__}") from None
        try:
            return msgspec.convert(payload, Claims, strict=False)
        except msgspec.ValidationError:
            raise TokenError("token claims are incomplete") from None
