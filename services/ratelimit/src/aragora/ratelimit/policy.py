"""Rate-limit policy: endpoint classes, tiers, keys, whitelist and trusted proxies.

Shared by the ratelimit service (which enforces it) and the gateway (which classifies
requests, resolves the client and keeps a local fallback limiter). Pure functions of the
settings: no I/O.

* Class of a request: ``POST /api/debates`` is ``debate_create``; ``/api/auth/*`` is
  ``auth``; ``/api/system/*``, ``/api/admin/*``, ``/api/debug/*`` and circuit resets are
  ``admin``; other ``GET``/``HEAD`` are ``read``; other methods ``write``.
* Budget of a caller: the class's ``ARAGORA_RATE_LIMIT_*_RPM`` per window, times the tier
  multiplier (anonymous 1, authenticated 4, admin 10); emergency mode holds every class
  and tier to ``ARAGORA_RATE_LIMIT_EMERGENCY_RPM``. On top, every client IP has one
  ceiling over all classes (``ARAGORA_RATE_LIMIT_IP_RPM``).
* Key: a resolved identity (issue 6) as ``user:<id>`` / ``api_key:<sha256 prefix>``; else
  a bearer token as ``token:<sha256 prefix>`` (never the token); else ``ip:<client ip>``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from aragora.contracts.ratelimit import (
    ENDPOINT_CLASSES,
    TIERS,
    Caller,
    EndpointClass,
    KeyType,
    Mode,
    Tier,
)
from aragora.runtime.settings import IPNetwork, Settings, parse_networks

TIER_MULTIPLIER: dict[Tier, int] = {"anonymous": 1, "authenticated": 4, "admin": 10}
CLASS_SETTING: dict[EndpointClass, str] = {
    "debate_create": "rate_limit_debate_rpm",
    "read": "rate_limit_read_rpm",
    "write": "rate_limit_write_rpm",
    "auth": "rate_limit_auth_rpm",
    "admin": "rate_limit_admin_rpm",
}
EXEMPT_PATHS = frozenset(
    {
        "/api/health",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/metrics",
        "/api/rate-limits/config",
        "/api/rate-limits/status",
    }
)
"""Never limited: probes and scrapes (a kubelet or Prometheus would trip the limits), and
the two routes a limited caller needs to see why (they consume nothing)."""
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, kw_only=True)
class Identity:
    """A caller resolved by authentication (issue 6 puts it in ``scope["state"]["identity"]``)."""

    key_type: KeyType  # "user" or "api_key"
    id: str
    tier: Tier = "authenticated"


ADMIN_ROLES = frozenset({"admin", "owner"})


def identity_of(found: object) -> Identity | None:
    """An :class:`Identity`, or an authenticated caller of the auth middleware's shape
    (``subject``, ``role``, ``kind`` = ``user``/``api_key``/``service``, ``token_id``)."""
    if found is None or isinstance(found, Identity):
        return found
    subject, kind = getattr(found, "subject", None), getattr(found, "kind", None)
    if not isinstance(subject, str) or not subject or not isinstance(kind, str):
        return None
    tier: Tier = "admin" if getattr(found, "role", None) in ADMIN_ROLES else "authenticated"
    token_id = getattr(found, "token_id", "")
    if kind == "api_key" and isinstance(token_id, str) and token_id:
        return Identity(key_type="api_key", id=token_id, tier=tier)
    return Identity(key_type="user", id=subject, tier=tier)


def key_hash(secret: str) -> str:
    """First 16 hex digits of SHA-256: enough to tell callers apart, useless to an attacker."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Policy:
    base: Mapping[EndpointClass, int]
    window_seconds: int
    ip_limit: int
    emergency: bool
    emergency_limit: int
    disabled: bool
    whitelist: tuple[IPNetwork, ...]
    trusted_proxies: tuple[IPNetwork, ...]

    @classmethod
    def from_settings(cls, s: Settings) -> Policy:
        return cls(
            base={c: int(getattr(s, CLASS_SETTING[c])) for c in ENDPOINT_CLASSES},
            window_seconds=s.rate_limit_window_seconds,
            ip_limit=s.rate_limit_ip_rpm,
            emergency=s.rate_limit_emergency,
            emergency_limit=s.rate_limit_emergency_rpm,
            disabled=s.rate_limit_disabled,
            whitelist=parse_networks(s.rate_limit_whitelist),
            trusted_proxies=parse_networks(s.trusted_proxies),
        )

    @property
    def mode(self) -> Mode:
        if self.disabled:
            return "disabled"
        return "emergency" if self.emergency else "normal"

    def limit(self, endpoint_class: EndpointClass, tier: Tier) -> int:
        if self.emergency:
            return min(self.emergency_limit, self.base[endpoint_class])
        return self.base[endpoint_class] * TIER_MULTIPLIER[tier]

    def ip_ceiling(self) -> int:
        return min(self.ip_limit, self.emergency_limit * 10) if self.emergency else self.ip_limit

    def budgets(self, caller: Caller, endpoint_class: EndpointClass) -> list[tuple[str, int]]:
        """(counter key, limit) pairs a request consumes: its class's, then its IP's."""
        out = [(f"{endpoint_class}:{caller.key}", self.limit(endpoint_class, caller.tier))]
        if caller.ip:
            out.append((f"ip-all:{caller.ip}", self.ip_ceiling()))
        return out

    def whitelisted(self, ip: str) -> bool:
        return _in(ip, self.whitelist)


def _in(ip: str, networks: tuple[IPNetwork, ...]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in net for net in networks if net.version == address.version)


def classify(method: str, path: str) -> EndpointClass:
    method = method.upper()
    path = path.rstrip("/") or "/"
    if path == "/api/debates" and method == "POST":
        return "debate_create"
    if path.startswith("/api/auth/") or path == "/api/auth":
        return "auth"
    if path.startswith(("/api/system/", "/api/admin/", "/api/debug/")) or (
        method == "POST" and path.endswith("/reset-circuit")
    ):
        return "admin"
    if method in {"GET", "HEAD", "OPTIONS"}:
        return "read"
    return "write"


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[IPNetwork, ...]) -> str:
    """The client's address: the TCP peer, unless the peer is a trusted proxy; then the
    right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy.

    A peer without an IP address (a unix socket, a test client) counts as 127.0.0.1, as a
    local reverse proxy would. Entries left of the first untrusted hop are never believed:
    a client can write anything there.
    """
    current = _normalise(peer) or LOOPBACK
    if not forwarded_for or not _in(current, trusted):
        return current
    for hop in reversed(forwarded_for.split(",")):
        address = _normalise(hop.strip())
        if address is None:
            break  # garbage: stop at the last hop a trusted proxy vouched for
        current = address
        if not _in(current, trusted):
            break
    return current


def _normalise(value: str | None) -> str | None:
    if not value:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def caller_for(ip: str, authorization: str | None, identity: Identity | None) -> Caller:
    if identity is not None:
        ident = identity.id if identity.key_type == "user" else key_hash(identity.id)
        return Caller(
            key=f"{identity.key_type}:{ident}",
            key_type=identity.key_type,
            tier=identity.tier,
            ip=ip,
        )
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            # Not verified until issue 6: the tier stays anonymous, the IP ceiling applies.
            return Caller(key=f"token:{key_hash(token.strip())}", key_type="token", ip=ip)
    return Caller(key=f"ip:{ip}", key_type="ip", ip=ip)


def config_document(s: Settings, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The effective policy, each value with its source (``env`` or ``default``)."""
    env = os.environ if environ is None else environ
    meta = {f.name: (f.metadata["env"], f.default) for f in fields(Settings)}
    policy = Policy.from_settings(s)

    def item(name: str, value: Any = None) -> dict[str, Any]:
        var, default = meta[name]
        value = getattr(s, name) if value is None else value
        source = "env" if env.get(var) else ("default" if value == default else "settings")
        return {"value": value, "env": var, "source": source}

    return {
        "mode": policy.mode,
        "disabled": item("rate_limit_disabled"),
        "emergency": item("rate_limit_emergency"),
        "emergency_limit": item("rate_limit_emergency_rpm"),
        "backend": "redis" if s.enable_redis_rate_limit else "memory",
        "redis_enabled": item("enable_redis_rate_limit"),
        "algorithm": "GCRA (sliding, no boundary bursts): the budget refills evenly",
        "window_seconds": item("rate_limit_window_seconds"),
        "classes": {
            c: {
                **item(CLASS_SETTING[c]),
                "limits": {t: policy.limit(c, t) for t in TIERS},
            }
            for c in ENDPOINT_CLASSES
        },
        "tier_multipliers": {**TIER_MULTIPLIER, "source": "default"},
        "ip_limit": item("rate_limit_ip_rpm", policy.ip_ceiling()),
        "whitelist": item("rate_limit_whitelist"),
        "trusted_proxies": item("trusted_proxies"),
        "keys": "identity (user/api_key, after auth), else bearer token SHA-256 prefix, else IP",
    }
