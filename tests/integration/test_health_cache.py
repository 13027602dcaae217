"""``/api/health`` runs its dependency checks once per HEALTH_CACHE_SECONDS, not per request
(docs/api.md), and concurrent requests share one run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aragora.gateway import system
from tests.integration.gateway_harness import Gateway


def _count_checks(gateway: Gateway) -> dict[str, int]:
    """Count the database round trips of the health checks (the real read model's)."""
    calls = {"ping": 0, "count_running": 0}
    readmodel: Any = gateway.deps.readmodel
    ping, count_running = readmodel.ping, readmodel.count_running

    async def counted_ping() -> float:
        calls["ping"] += 1
        result: float = await ping()
        return result

    async def counted_count_running() -> int:
        calls["count_running"] += 1
        result: int = await count_running()
        return result

    readmodel.ping, readmodel.count_running = counted_ping, counted_count_running
    return calls


async def test_health_checks_are_shared_within_the_cache_window(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(system, "HEALTH_CACHE_SECONDS", 3600.0)  # no expiry during the test
    calls = _count_checks(gateway)
    concurrent = await asyncio.gather(*(gateway.client.get("/api/health") for _ in range(5)))
    sequential = [await gateway.client.get("/api/health") for _ in range(3)]
    bodies = [r.json() for r in (*concurrent, *sequential)]
    assert {r.status_code for r in (*concurrent, *sequential)} == {200}
    assert calls == {"ping": 1, "count_running": 1}
    assert all(b["checks"]["database"]["status"] == "ok" for b in bodies)
    assert all(b["checks"]["nats"]["status"] == "ok" for b in bodies)
    assert len({b["checks"]["database"]["latency_ms"] for b in bodies}) == 1  # one result


async def test_health_checks_run_again_once_the_window_has_passed(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(system, "HEALTH_CACHE_SECONDS", 0.0)  # every result already stale
    calls = _count_checks(gateway)
    for _ in range(3):
        assert (await gateway.client.get("/api/health")).status_code == 200
    assert calls == {"ping": 3, "count_running": 3}
