"""Revocations and the signing-key ring, shared by every gateway replica through NATS KV.

Bucket ``ARAGORA_AUTH`` (history 1, file storage) holds:

* ``jti.<jti>`` — a revoked access token (kept until it would have expired anyway, then
  pruned); ``key.<id>`` — a revoked API key (a day; the database marks it for good);
* ``nbf.all`` — every access token issued before this time is refused (revoke-all);
  ``nbf.user.<user id>`` — the same for one user (logout, forced password reset);
* ``signing.keyring`` — the JWT key ring (:class:`RingDoc`): kids, retirement times and
  each rotated key sealed under ARAGORA_JWT_SECRET (the master key itself is never stored).

Each replica keeps the whole bucket in memory and follows it with ``watchall()``: a write by
any replica reaches the others in milliseconds, and checking a request costs dictionary
lookups, never a round trip. The watch is re-opened after a reconnect (the snapshot is
rebuilt from the bucket), and the gateway answers no request before the first snapshot is
in. Listeners (:meth:`AuthState.add_listener`) hear of every change, so open WebSocket
connections can be re-checked and closed (see :meth:`AuthState.refusal`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, Literal

import msgspec
import nats.errors
import nats.js.errors
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from aragora.contracts.security import AUTH_BUCKET
from aragora.contracts.subjects import EVENTS_STREAM
from aragora.gateway.tokens import KeyRing, TokenError, key_id, seal, unseal
from aragora.runtime.bus import Connection

log = logging.getLogger("aragora.gateway.revocation")

TOKEN_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
RING_KEY = "signing.keyring"
Kind = Literal["access_token", "api_key"]
Listener = Callable[[], None]


class Revoked(msgspec.Struct, frozen=True, kw_only=True):
    token_id: str
    kind: Kind
    revoked_at: float
    expires_at: float  # after this the token is refused anyway: the entry can go
    revoked_by: str = ""
    reason: str = ""


class NotBefore(msgspec.Struct, frozen=True, kw_only=True):
    not_before: float
    set_by: str = ""
    reason: str = ""


class RingKey(msgspec.Struct, frozen=True, kw_only=True):
    kid: str
    sealed: str = ""  # empty: the master key (ARAGORA_JWT_SECRET), never stored
    created_at: float = 0.0
    retire_at: float | None = None


class RingDoc(msgspec.Struct, frozen=True, kw_only=True):
    current: str
    keys: list[RingKey]


_revoked = msgspec.json.Decoder(Revoked)
_not_before = msgspec.json.Decoder(NotBefore)
_ring = msgspec.json.Decoder(RingDoc)


class AuthState:
    """This replica's copy of the bucket, the checks that use it, and the writes."""

    def __init__(
        self,
        keys: KeyRing,
        master: str,
        *,
        token_ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self._master = master
        self._master_kid = key_id(master)
        self._token_ttl = token_ttl
        self._clock = clock
        self.revoked: dict[str, Revoked] = {}  # by bucket key (jti.<id>, key.<id>)
        self.not_before_all = 0.0
        self.not_before_user: dict[str, float] = {}
        self._listeners: list[Listener] = []
        self._kv: KeyValue | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._timers: list[asyncio.TimerHandle] = []

    # --- checks (every request) ---------------------------------------------------------

    def refusal(
        self, kind: str, token_id: str, subject: str, issued_at: float, kid: str = ""
    ) -> str | None:
        """Why a credential is revoked now, or None. ``kind`` as in ``Identity.kind``."""
        if kind == "api_key":
            return "API key revoked" if f"key.{token_id}" in self.revoked else None
        if kind != "user":
            return None  # the service token is not revocable here (rotate ARAGORA_API_TOKEN)
        if f"jti.{token_id}" in self.revoked:
            return "token revoked"
        if issued_at < self.not_before_all:
            return "token revoked (every token issued before the revocation is refused)"
        if issued_at < self.not_before_user.get(subject, 0.0):
            return "token revoked (the account's sessions were ended)"
        if kid and self.keys.retired(kid):
            return "token signed by a retired key (keys were rotated): log in again"
        return None

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener()`` after every change (revocation, not-before, key retired).

        For the WebSocket code: re-check each open connection's identity with
        :meth:`refusal` and close the refused ones (4401, "token revoked")."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("revocation listener failed")

    # --- the watch ------------------------------------------------------------------------

    async def start(self, conn: Connection, replicas: int = 1) -> None:
        """Open (or create) the bucket and load it; then follow it in the background."""
        self._kv = await _bucket(conn, replicas)
        reconnected = asyncio.Event()
        conn.reconnected.append(reconnected)
        first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._follow(reconnected, first), name="auth-watch")
        await asyncio.wait_for(asyncio.shield(first), 10)

    async def stop(self) -> None:
        self._stopping.set()
        for timer in self._timers:
            timer.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _follow(self, reconnected: asyncio.Event, first: asyncio.Future[None]) -> None:
        assert self._kv is not None
        backoff = 0.1
        while not self._stopping.is_set():
            watcher = None
            try:
                reconnected.clear()
                watcher = await self._kv.watchall()
                snapshot: dict[str, bytes] = {}
                loaded = False
                while not reconnected.is_set():
                    try:
                        entry = await watcher.updates(timeout=1.0)  # type: ignore[no-untyped-call]
                    except nats.errors.TimeoutError:
                        continue
                    if entry is None:  # the end of the initial snapshot
                        self._load(snapshot)
                        loaded = True
                        if not first.done():
                            first.set_result(None)
                        continue
                    gone = entry.operation in (KV_DEL, KV_PURGE)
                    if not loaded:
                        if gone:
                            snapshot.pop(entry.key, None)
                        else:
                            snapshot[entry.key] = entry.value or b""
                    else:
                        self._apply(entry.key, None if gone else (entry.value or b""))
                        self._notify()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("auth bucket watch failed (%s); re-opening", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                if watcher is not None:
                    with contextlib.suppress(Exception):
                        await watcher.stop()  # type: ignore[no-untyped-call]

    def _load(self, snapshot: dict[str, bytes]) -> None:
        self.revoked, self.not_before_all, self.not_before_user = {}, 0.0, {}
        if RING_KEY not in snapshot:
            self._install(None)
        for key, value in snapshot.items():
            self._apply(key, value)
        self._notify()

    def _apply(self, key: str, value: bytes | None) -> None:
        try:
            if key.startswith(("jti.", "key.")):
                if value is None:
                    self.revoked.pop(key, None)
                else:
                    self.revoked[key] = _revoked.decode(value)
            elif key == "nbf.all":
                self.not_before_all = _not_before.decode(value).not_before if value else 0.0
            elif key.startswith("nbf.user."):
                user = key.removeprefix("nbf.user.")
                if value is None:
                    self.not_before_user.pop(user, None)
                else:
                    self.not_before_user[user] = _not_before.decode(value).not_before
            elif key == RING_KEY:
                self._install(_ring.decode(value) if value else None)
        except msgspec.DecodeError:
            log.error("auth bucket: undecodable value at %s (ignored)", key)

    def _install(self, doc: RingDoc | None) -> None:
        """Install the ring ``doc`` (None: the master key alone)."""
        keys: dict[str, tuple[str, float | None]] = {}
        for entry in doc.keys if doc else []:
            try:
                secret = self._master if not entry.sealed else unseal(self._master, entry.sealed)
            except TokenError:
                log.error("signing key %s was sealed under another ARAGORA_JWT_SECRET", entry.kid)
                continue
            keys[entry.kid] = (secret, entry.retire_at)
        current = doc.current if doc and doc.current in keys else self._master_kid
        keys.setdefault(self._master_kid, (self._master, None))
        self.keys.install(current, keys)
        now = self._clock()
        loop = asyncio.get_running_loop()
        for timer in self._timers:
            timer.cancel()
        self._timers = [
            loop.call_later(retire - now + 0.01, self._notify)
            for _, retire in keys.values()
            if retire is not None and retire > now
        ]

    # --- writes (admin routes, logout) -----------------------------------------------------

    def _bucket(self) -> KeyValue:
        if self._kv is None:
            raise RuntimeError("the auth state is not started")
        return self._kv

    async def revoke_token(
        self, token_id: str, kind: Kind, *, by: str, reason: str = "", expires_at: float = 0.0
    ) -> Revoked:
        """Refuse ``token_id`` (a jti or an API key id) on every replica from now on."""
        if not TOKEN_ID.match(token_id):
            raise ValueError("token_id: 1 to 128 letters, digits, '-' or '_'")
        now = self._clock()
        entry = Revoked(
            token_id=token_id,
            kind=kind,
            revoked_at=now,
            # An access token lives at most its TTL (plus the verifier's leeway). A revoked
            # API key is also marked in the database, which every replica reads within 5 s:
            # its entry here only has to outlast that, and stays a day for the listing.
            expires_at=expires_at
            or (now + self._token_ttl + 60 if kind == "access_token" else now + 86400),
            revoked_by=by,
            reason=reason,
        )
        key = ("jti." if kind == "access_token" else "key.") + token_id
        await self._bucket().put(key, msgspec.json.encode(entry))
        self._apply(key, msgspec.json.encode(entry))
        self._notify()
        await self._prune(now)
        return entry

    async def _prune(self, now: float) -> None:
        """Forget revoked access tokens that have expired anyway (a few per call)."""
        expired = [k for k, r in self.revoked.items() if r.expires_at and r.expires_at < now][:50]
        for key in expired:
            with contextlib.suppress(Exception):
                await self._bucket().purge(key)
            self.revoked.pop(key, None)

    async def not_before(self, user_id: str | None, *, by: str, reason: str) -> float:
        """Refuse every access token issued before now: of ``user_id``, or everyone's."""
        now = self._clock()
        value = msgspec.json.encode(NotBefore(not_before=now, set_by=by, reason=reason))
        key = f"nbf.user.{user_id}" if user_id else "nbf.all"
        await self._bucket().put(key, value)
        self._apply(key, value)
        self._notify()
        return now

    async def rotate(self, grace_seconds: float) -> dict[str, Any]:
        """A new random signing key becomes current; the previous one retires after
        ``grace_seconds``. Compare-and-set on the bucket: concurrent rotations both land."""
        kv = self._bucket()
        while True:
            now = self._clock()
            try:
                entry = await kv.get(RING_KEY)
                doc, revision = _ring.decode(entry.value or b""), entry.revision
            except nats.js.errors.KeyNotFoundError:
                doc, revision = None, None
            if doc is None:
                doc = RingDoc(
                    current=self._master_kid, keys=[RingKey(kid=self._master_kid, created_at=now)]
                )
            secret = secrets.token_urlsafe(48)
            new = RingKey(kid=key_id(secret), sealed=seal(self._master, secret), created_at=now)
            kept = [
                k
                if k.kid != doc.current
                else msgspec.structs.replace(k, retire_at=now + grace_seconds)
                for k in doc.keys
                # Keys past their grace for a day are dropped: nothing they signed lives on.
                if k.retire_at is None or k.retire_at > now - 86400
            ]
            fresh = RingDoc(current=new.kid, keys=[*kept, new])
            value = msgspec.json.encode(fresh)
            try:
                if revision is None:
                    await kv.create(RING_KEY, value)
                else:
                    await kv.update(RING_KEY, value, last=revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                continue  # another replica rotated meanwhile: rotate on top of it
            self._apply(RING_KEY, value)
            self._notify()
            retiring = [k for k in kept if k.kid == doc.current]
            return {
                "kid": new.kid,
                "previous_kid": doc.current,
                "grace_seconds": grace_seconds,
                "previous_valid_until": retiring[0].retire_at if retiring else now,
                "keys": {k.kid: k.retire_at for k in fresh.keys},
            }

    def listing(self) -> dict[str, Any]:
        """What ``GET /api/admin/revoked-tokens`` shows (ids only, never a secret)."""
        now = self._clock()
        tokens = sorted(
            (r for r in self.revoked.values() if not r.expires_at or r.expires_at >= now),
            key=lambda r: r.revoked_at,
            reverse=True,
        )
        return {
            "revoked_tokens": [msgspec.to_builtins(r) for r in tokens],
            "count": len(tokens),
            "not_before": {
                "all": self.not_before_all or None,
                "users": dict(self.not_before_user),
            },
            "signing_keys": {
                "current": self.keys.current_kid,
                "retiring": {k: t for k, t in self.keys.kids().items() if t is not None},
            },
        }


async def _bucket(conn: Connection, replicas: int) -> KeyValue:
    try:
        return await conn.js.key_value(AUTH_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        pass
    try:
        info = await conn.js.stream_info(EVENTS_STREAM.name)
        replicas = max(info.config.num_replicas or replicas, 1)
    except Exception:
        log.debug("events stream info unavailable; bucket replicas %d", replicas)
    try:
        return await conn.js.create_key_value(
            KeyValueConfig(
                bucket=AUTH_BUCKET,
                description="Revoked tokens, not-before marks, the sealed JWT key ring",
                history=1,
                storage=StorageType.FILE,
                replicas=replicas,
            )
        )
    except nats.js.errors.BadRequestError:  # another replica created it meanwhile
        return await conn.js.key_value(AUTH_BUCKET)
