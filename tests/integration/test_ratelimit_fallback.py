"""Redis stops mid-test: requests keep flowing under in-memory limits, health says so, and
shared limits come back with Redis. Uses a redis-server of the test's own on a free port
(the machine's Redis at 6379 stays untouched)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from aragora.runtime.natsserver import EmbeddedNats
from tests.integration.ratelimit_harness import (
    gateway_replica,
    ratelimit_service,
    redis_server,
    rl_settings,
    wait_for,
)


async def _burst(clients: list[httpx.AsyncClient], n: int, **kw: Any) -> Counter[int]:
    responses = await asyncio.gather(
        *(clients[i % len(clients)].get("/api/agents", **kw) for i in range(n))
    )
    return Counter(r.status_code for r in responses)


async def test_redis_outage_falls_back_to_memory_and_recovers(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    with redis_server() as redis:
        settings = rl_settings(
            tmp_path,
            nats_server.url,
            enable_redis_rate_limit=True,
            redis_url=redis.url,
            rate_limit_read_rpm=5,
            trusted_proxies="192.0.2.0/24",  # the test's "load balancer" sets X-Forwarded-For
        )
        other = dataclasses.replace(settings, data_dir=tmp_path / "gateway-2")
        async with (
            ratelimit_service(settings) as replica_1,
            ratelimit_service(settings) as replica_2,
            gateway_replica(settings) as gateway_1,
            gateway_replica(other) as gateway_2,
        ):
            clients = [gateway_1.client("192.0.2.1"), gateway_2.client("192.0.2.1")]

            async def health() -> dict[str, Any]:
                body: dict[str, Any] = (await clients[0].get("/api/health")).json()
                return body

            checks = (await health())["checks"]
            assert checks["redis"]["status"] == "ok"
            assert checks["rate_limiting"] == {
                "status": "ok",
                "backend": "redis",
                "mode": "normal",
                "detail": "",
            }
            # Shared: 20 requests over two gateways and two services admit exactly 5.
            one = {"X-Forwarded-For": "203.0.113.1"}
            assert await _burst(clients, 20, headers=one) == {200: 5, 429: 15}

            redis.stop()
            stopped = time.monotonic()
            # Requests keep flowing at once, under in-memory limits (per replica).
            two = {"X-Forwarded-For": "203.0.113.2"}
            first = await clients[0].get("/api/agents", headers=two)
            assert first.status_code == 200
            assert time.monotonic() - stopped < 1.0
            flowing = await _burst(clients, 40, headers=two)
            # Each service replica now has its own budget of 5: 5 to 10 admitted in all.
            assert 5 <= flowing[200] + 1 <= 10 and flowing[429] >= 30
            body = await wait_for(
                lambda: _when(health, lambda b: b["checks"]["redis"]["status"] == "down"),
                timeout=1.0,
            )
            assert body["checks"]["rate_limiting"]["status"] == "degraded"
            assert body["checks"]["rate_limiting"]["backend"] == "memory"
            assert "redis" in body["checks"]["rate_limiting"]["detail"]
            assert any("degraded" in w for w in body["warnings"])
            assert body["status"] == "healthy"  # the API itself still serves everything
            status = (await clients[0].get("/api/rate-limits/status", headers=two)).json()
            assert status["backend"] == "memory" and status["degraded"] is True, status
            assert {replica_1.limiter.backend, replica_2.limiter.backend} == {"memory"}

            redis.start()  # same port, empty: the services find it again
            body = await wait_for(
                lambda: _when(health, lambda b: b["checks"]["redis"]["status"] == "ok"),
                timeout=5.0,
            )
            assert body["checks"]["rate_limiting"]["status"] == "ok"
            assert "warnings" not in body
            await wait_for(
                lambda: _ready(replica_1.limiter.redis_up and replica_2.limiter.redis_up),
                timeout=5.0,
            )
            # Shared limits again: exactly 5 over both gateways and both services.
            three = {"X-Forwarded-For": "203.0.113.3"}
            assert await _burst(clients, 20, headers=three) == {200: 5, 429: 15}
            for client in clients:
                await client.aclose()


async def _when(fetch: Any, done: Any) -> Any:
    value = await fetch()
    return value if done(value) else None


async def _ready(value: bool) -> bool:
    return value
