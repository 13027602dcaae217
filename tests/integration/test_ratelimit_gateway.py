"""The gateway's rate limiting as configured: whitelist, trusted proxies and spoofed
X-Forwarded-For, bearer-token keys, emergency and disabled modes, the fail-open fallback,
and the three routes. A ratelimit replica in memory mode answers over a real NATS."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest

from aragora.runtime.natsserver import EmbeddedNats
from tests.integration.ratelimit_harness import gateway_replica, ratelimit_service, rl_settings

TOKEN = "sk-secret-bearer-token-0123456789"


@contextlib.asynccontextmanager
async def stack(
    nats_server: EmbeddedNats, tmp_path: Path, *, service: bool = True, **overrides: Any
) -> AsyncIterator[Any]:
    settings = rl_settings(tmp_path, nats_server.url, **{"rate_limit_read_rpm": 3, **overrides})
    async with contextlib.AsyncExitStack() as stack:
        if service:
            await stack.enter_async_context(ratelimit_service(settings))
        gateway = await stack.enter_async_context(gateway_replica(settings))
        yield gateway


async def _statuses(client: httpx.AsyncClient, n: int, **kw: Any) -> list[int]:
    return [(await client.get("/api/agents", **kw)).status_code for _ in range(n)]


async def test_whitelisted_cidr_is_never_limited(nats_server: EmbeddedNats, tmp_path: Path) -> None:
    async with (
        stack(nats_server, tmp_path, rate_limit_whitelist="10.0.0.0/8") as gw,
        gw.client("10.1.2.3") as inside,
        gw.client("192.0.2.50") as outside,
    ):
        assert await _statuses(inside, 10) == [200] * 10
        response = await inside.get("/api/agents")
        assert "X-RateLimit-Limit" not in response.headers  # not counted at all
        assert await _statuses(outside, 5) == [200, 200, 200, 429, 429]
        status = (await inside.get("/api/rate-limits/status")).json()
        assert status["whitelisted"] is True and status["limited"] is False


async def test_spoofed_forwarded_for_is_ignored_without_trusted_proxies(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    async with (
        stack(nats_server, tmp_path, rate_limit_whitelist="10.0.0.0/8") as gw,
        gw.client("198.51.100.9") as client,
    ):
        # Claiming a whitelisted address, or a new one each time, changes nothing.
        spoofs = [{"X-Forwarded-For": f"10.0.0.{i}"} for i in range(5)]
        codes = [(await client.get("/api/agents", headers=h)).status_code for h in spoofs]
        assert codes == [200, 200, 200, 429, 429]
        status = (await client.get("/api/rate-limits/status", headers=spoofs[0])).json()
        assert status["client_ip"] == "198.51.100.9" and status["key"] == "ip:198.51.100.9"


async def test_forwarded_for_is_believed_only_through_trusted_proxies(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    async with (
        stack(
            nats_server,
            tmp_path,
            rate_limit_whitelist="10.0.0.0/8",
            trusted_proxies="172.16.0.0/12",
        ) as gw,
        gw.client("172.16.0.5") as proxy,
    ):
        # A client behind the proxy in the whitelist passes.
        office = {"X-Forwarded-For": "10.4.4.4"}
        assert await _statuses(proxy, 5, headers=office) == [200] * 5
        # A client cannot spoof past the proxy: only the right-most untrusted hop counts.
        spoofed = {"X-Forwarded-For": "10.9.9.9, 203.0.113.77"}
        assert await _statuses(proxy, 4, headers=spoofed) == [200, 200, 200, 429]
        status = (await proxy.get("/api/rate-limits/status", headers=spoofed)).json()
        assert status["client_ip"] == "203.0.113.77"
        # Another client behind the same proxy has a budget of its own.
        other = {"X-Forwarded-For": "203.0.113.78, 172.16.0.9"}
        assert await _statuses(proxy, 3, headers=other) == [200] * 3


async def test_bearer_tokens_are_keyed_by_hash_and_never_logged(
    nats_server: EmbeddedNats, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with (
        stack(nats_server, tmp_path, rate_limit_ip_rpm=8) as gw,
        gw.client("198.51.100.20") as client,
    ):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert await _statuses(client, 4, headers=auth) == [200, 200, 200, 429]
        refused = await client.get("/api/agents", headers=auth)
        assert refused.json()["key_type"] == "token"
        status = (await client.get("/api/rate-limits/status", headers=auth)).json()
        assert status["key_type"] == "token" and status["key"].startswith("token:")
        assert TOKEN not in str(status) and TOKEN not in refused.text
        # The IP has a budget of its own; rotating tokens hits the per-IP ceiling.
        rotated = [
            (await client.get("/api/agents", headers={"Authorization": f"Bearer t{i}"}))
            for i in range(6)
        ]
        codes = [r.status_code for r in rotated]
        assert codes == [200, 200, 200, 200, 200, 429]
        assert rotated[-1].json()["scope"] == "ip"
    lines = [r.getMessage() for r in caplog.records if "rate_limit" in r.getMessage()]
    assert lines, "each 429 is logged with rate_limit in its message"
    assert all(TOKEN not in str(r.__dict__) for r in caplog.records)


async def test_emergency_mode_holds_every_class_to_the_emergency_limit(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    async with (
        stack(
            nats_server,
            tmp_path,
            rate_limit_emergency=True,
            rate_limit_emergency_rpm=2,
            rate_limit_read_rpm=100,
        ) as gw,
        gw.client("198.51.100.30") as client,
    ):
        assert await _statuses(client, 3) == [200, 200, 429]
        config = (await client.get("/api/rate-limits/config")).json()
        assert config["mode"] == "emergency"
        assert config["classes"]["read"]["limits"] == {
            "anonymous": 2,
            "authenticated": 2,
            "admin": 2,
        }
        health = (await client.get("/api/health")).json()
        assert health["checks"]["rate_limiting"]["mode"] == "emergency"


async def test_disabled_mode_limits_nothing_and_says_so_loudly(
    nats_server: EmbeddedNats, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with (
        stack(nats_server, tmp_path, rate_limit_disabled=True) as gw,
        gw.client("198.51.100.40") as client,
    ):
        assert await _statuses(client, 10) == [200] * 10
        health = (await client.get("/api/health")).json()
        assert health["checks"]["rate_limiting"]["status"] == "disabled"
        assert "DISABLED" in health["checks"]["rate_limiting"]["detail"]
        assert any("disabled" in w for w in health["warnings"])
    assert any(
        r.levelno >= logging.ERROR and "rate_limit DISABLED" in r.getMessage()
        for r in caplog.records
    )


async def test_without_a_ratelimit_service_the_gateway_fails_open_with_local_limits(
    nats_server: EmbeddedNats, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        stack(nats_server, tmp_path, service=False) as gw,
        gw.client("198.51.100.50") as client,
    ):
        assert await _statuses(client, 4) == [200, 200, 200, 429]
        health = (await client.get("/api/health")).json()
        assert health["checks"]["rate_limiting"]["status"] == "degraded"
        assert health["checks"]["rate_limiting"]["backend"] == "gateway-memory"
        assert health["status"] == "healthy"
        stats = (await client.get("/api/system/rate-limits")).json()
        assert stats["gateway"]["service"] == "unreachable"
        assert stats["gateway"]["local_fallback_hits"] == {"read": 1}
    assert any("rate_limit service unreachable" in r.getMessage() for r in caplog.records)


async def test_routes_report_config_status_and_admin_view(
    nats_server: EmbeddedNats, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARAGORA_RATE_LIMIT_READ_RPM", "3")
    async with stack(nats_server, tmp_path) as gw, gw.client("198.51.100.60") as client:
        await _statuses(client, 5)
        await client.post("/api/debates", json={"topic": "limits?"})
        config = (await client.get("/api/rate-limits/config")).json()
        assert config["classes"]["read"]["source"] == "env"
        assert config["classes"]["read"]["limits"]["anonymous"] == 3
        assert config["classes"]["read"]["limits"]["admin"] == 30
        assert config["classes"]["debate_create"]["source"] == "default"
        assert config["classes"]["debate_create"]["env"] == "ARAGORA_RATE_LIMIT_DEBATE_RPM"
        assert config["whitelist"]["value"] == "none"

        status = (await client.get("/api/rate-limits/status")).json()
        assert status["backend"] == "memory" and status["redis"] == "not_configured"
        assert status["counters"]["read"]["remaining"] == 0
        assert status["counters"]["debate_create"]["remaining"] == 9
        assert status["counters"]["ip"]["limit"] == 600

        admin = (await client.get("/api/system/rate-limits?top=5")).json()
        assert admin["hits_by_class"]["read"] == 2
        assert admin["top_limited"] == [
            {"key": "ip:198.51.100.60", "endpoint_class": "read", "hits": 2}
        ]
        exposition = generate_latest(REGISTRY).decode()
        metrics = await client.get("/metrics")
        if metrics.status_code == 200:  # unless auth keeps /metrics private
            exposition = metrics.text
        assert "rate_limit_hits_total{" in exposition
        assert 'class="read"' in exposition and 'key_type="ip"' in exposition
