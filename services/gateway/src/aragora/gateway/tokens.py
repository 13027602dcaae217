"""JWT access tokens: HS256 only, ``kid`` in the header, every registered claim checked.

An access token carries ``sub`` (user id), ``role``, ``tv`` (the user's token version:
logging out everywhere bumps it), ``iss``/``aud`` (fixed), ``iat``, ``exp`` and a unique
``jti``. Verification pins the algorithm (a token that says ``none`` or RS256 is refused)
and looks the key up by ``kid`` in a key ring, so a new signing key can be introduced
(``POST /api/admin/rotate-keys``) while tokens signed by the previous one stay valid for a
grace period. Rotated keys are random; the ring is shared by every gateway replica through
a NATS KV bucket (:mod:`aragora.gateway.revocation`), each key sealed (AES-GCM) under a key
derived from ARAGORA_JWT_SECRET, so the bucket never holds a usable key.

The secret comes from ARAGORA_JWT_SECRET; outside production, when it is unset, one is
generated once into ``ARAGORA_DATA_DIR/jwt-secret`` (mode 0600) and reused, and the log
says so. Neither the secret nor tokens are ever logged.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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
    iat: float  # milliseconds matter: "every token issued before now" must not catch the next


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


def _kek(master: str) -> AESGCM:
    return AESGCM(hashlib.sha256(b"aragora-keyring:" + master.encode()).digest())


def seal(master: str, secret: str) -> str:
    """``secret`` encrypted (AES-256-GCM) under a key derived from the master secret, so
    the key ring can live in a shared store that never sees a usable key."""
    nonce = os.urandom(12)
    sealed = nonce + _kek(master).encrypt(nonce, secret.encode(), b"aragora-jwt-key")
    return base64.urlsafe_b64encode(sealed).decode()


def unseal(master: str, sealed: str) -> str:
    """The secret :func:`seal` sealed; :class:`TokenError` if another master sealed it."""
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
        return _kek(master).decrypt(raw[:12], raw[12:], b"aragora-jwt-key").decode()
    except (ValueError, InvalidTag):
        raise TokenError("a signing key sealed under another ARAGORA_JWT_SECRET") from None


class KeyRing:
    """The key that signs new tokens, and every key still accepted, by ``kid``.

    A key may carry a retirement time (epoch seconds): after a rotation the previous key
    verifies tokens for a grace period, then refuses them. :meth:`install` swaps the whole
    ring at once (the gateway's KV watcher calls it when any replica rotates)."""

    def __init__(
        self,
        current: str,
        previous: list[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self.current_kid = key_id(current)
        self._keys: dict[str, tuple[str, float | None]] = {
            key_id(k): (k, None) for k in [*(previous or []), current]
        }

    def install(self, current_kid: str, keys: dict[str, tuple[str, float | None]]) -> None:
        """Replace the ring: ``keys`` maps kid to (secret, retire_at or None)."""
        if current_kid not in keys:
            raise ValueError("the current key must be in the ring")
        self._keys = dict(keys)
        self.current_kid = current_kid

    def kids(self) -> dict[str, float | None]:
        """Every kid in the ring and when it retires (None: not scheduled)."""
        return {kid: retire for kid, (_, retire) in self._keys.items()}

    def retired(self, kid: str) -> bool:
        """Whether tokens signed by ``kid`` are refused now (unknown or past its grace)."""
        found = self._keys.get(kid)
        return found is None or (found[1] is not None and self._clock() >= found[1])

    def issue(self, user_id: str, role: str, token_version: int, ttl: int) -> tuple[str, Claims]:
        now = self._clock()
        claims = Claims(
            sub=user_id,
            role=role,
            tv=token_version,
            jti=str(uuid.uuid4()),
            iat=round(now, 3),
            exp=int(now) + ttl,
        )
        payload: dict[str, Any] = {**msgspec.to_builtins(claims), "iss": ISSUER, "aud": AUDIENCE}
        token = jwt.encode(
            payload,
            self._keys[self.current_kid][0],
            algorithm=ALGORITHM,
            headers={"kid": self.current_kid},
        )
        return token, claims

    def verify(self, token: str) -> tuple[Claims, str]:
        """The token's claims and the kid that signed it; :class:`TokenError` if refused."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise TokenError(f"token algorithm must be {ALGORITHM}")
        kid = str(header.get("kid", ""))
        found = self._keys.get(kid)
        if found is None:
            raise TokenError("token signed by an unknown key")
        if self.retired(kid):
            raise TokenError("token signed by a retired key (keys were rotated): log in again")
        try:
            payload = jwt.decode(
                token,
                found[0],
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
            return msgspec.convert(payload, Claims, strict=False), kid
        except msgspec.ValidationError:
            raise TokenError("token claims are incomplete") from None
