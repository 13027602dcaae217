"""Request/reply messages of the rate-limit service (``aragora.rpc.ratelimit.*``).

The gateway asks for every limited request; one ratelimit replica (queue group
``ratelimit``) answers. Keys are never secrets: a bearer token travels only as the first
16 hex digits of its SHA-256 (``token:3f2a…``), a client as its IP (``ip:203.0.113.7``).
Durations are seconds relative to the answer (clocks of gateway and service may differ).
"""

from __future__ import annotations

from typing import Literal

import msgspec

KeyType = Literal["ip", "token", "user", "api_key"]
Tier = Literal["anonymous", "authenticated", "admin"]
EndpointClass = Literal["debate_create", "read", "write", "auth", "admin"]
ENDPOINT_CLASSES: tuple[EndpointClass, ...] = ("debate_create", "read", "write", "auth", "admin")
TIERS: tuple[Tier, ...] = ("anonymous", "authenticated", "admin")
Backend = Literal["redis", "memory", "gateway-memory", "disabled"]
RedisState = Literal["up", "down", "not_configured", "unknown"]
Mode = Literal["normal", "emergency", "disabled"]


class _Rpc(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    pass


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """Who is counted: ``key`` (``<key_type>:<id>``), its tier, and the client IP for the
    per-IP ceiling (empty: no ceiling)."""

    key: str
    key_type: KeyType
    tier: Tier = "anonymous"
    ip: str = ""


class RateLimitCheck(_Rpc, frozen=True, kw_only=True, tag="rpc.ratelimit.check"):
    caller: Caller
    endpoint_class: EndpointClass
    cost: int = 1


class RateLimitDecision(_Rpc, frozen=True, kw_only=True, tag="rpc.ratelimit.decision"):
    """``limit``/``remaining``/``reset_seconds`` describe the binding budget (the class's,
    or the per-IP ceiling when that is the tighter one); ``retry_after_seconds`` is 0 when
    ``allowed``. ``scope`` says which budget bound: ``class`` or ``ip``."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    retry_after_seconds: float = 0.0
    scope: Literal["class", "ip"] = "class"
    backend: Backend = "memory"
    degraded: bool = False


class RateLimitStatusRequest(_Rpc, frozen=True, kw_only=True, tag="rpc.ratelimit.status"):
    """Counters of ``caller`` in every class (none when ``caller`` is None: backend only)."""

    caller: Caller | None = None


class ClassCounter(msgspec.Struct, frozen=True, kw_only=True):
    endpoint_class: str
    limit: int
    remaining: int
    reset_seconds: float
    window_seconds: int


class BackendState(msgspec.Struct, frozen=True, kw_only=True):
    """``degraded``: Redis is configured but down, so limits are per replica meanwhile."""

    backend: Backend
    redis: RedisState
    mode: Mode
    degraded: bool = False
    detail: str = ""
    instance: str = ""
    redis_latency_ms: float | None = None  # the status request's Redis PING, when it ran


class RateLimitStatusReply(_Rpc, frozen=True, kw_only=True, tag="rpc.ratelimit.status_reply"):
    state: BackendState
    counters: list[ClassCounter] = []


class RateLimitStatsRequest(_Rpc, frozen=True, kw_only=True, tag="rpc.ratelimit.stats"):
    top: int = 10


class LimitedKey(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    endpoint_class: str
    hits: int


class RateLimitStatsReply(_Rpc, frozen=True, kw_only=True, tag="rpc.ratelimit.stats_reply"):
    """``hits_by_class``/``top_limited`` count 429s: shared across replicas with Redis,
    this replica's own in memory."""

    state: BackendState
    hits_by_class: dict[str, int]
    top_limited: list[LimitedKey]
    checks: int = 0


RateLimitRequest = RateLimitCheck | RateLimitStatusRequest | RateLimitStatsRequest
