"""Exact limits in Redis: two gateway replicas and two ratelimit replicas share one budget.

Done-when of issue 7: 1,000 concurrent requests against a limit of 100 per window, spread
over two gateways (each asking the ratelimit replicas over NATS), admit exactly 100. Runs
against the machine's Redis at 127.0.0.1:6379 under a key prefix of the test's own. The
ratelimit replicas are processes of their own (``python -m aragora.ratelimit``), as
deployed; the two gateways share the test's event loop, which a thousand requests at once
keep busy for seconds, so they wait longer for answers than the 3 s default.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from pathlib import Path

import pytest

from aragora.ratelimit.redis_store import RedisStore
from aragora.runtime.natsserver import EmbeddedNats
from aragora.runtime.settings import Settings
from tests.integration.gateway_harness import metric
from tests.integration.ratelimit_harness import (
    SHARED_REDIS,
    flush_prefix,
    gateway_replica,
    ratelimit_process,
    rl_settings,
)


@pytest.fixture
def settings(nats_server: EmbeddedNats, tmp_path: Path):  # type: ignore[no-untyped-def]
    s = rl_settings(
        tmp_path,
        nats_server.url,
        enable_redis_rate_limit=True,
        redis_url=SHARED_REDIS,
        rate_limit_read_rpm=100,
        rate_limit_ip_rpm=10_000,
        rate_limit_timeout_seconds=30.0,
    )
    yield s
    flush_prefix(s.rate_limit_prefix)


async def test_thousand_concurrent_requests_over_two_gateways_admit_exactly_100(
    settings, tmp_path: Path
) -> None:
    other = dataclasses.replace(settings, data_dir=tmp_path / "gateway-2")
    before = metric("rate_limit_hits_total", {"class": "read", "key_type": "ip"})
    with (
        ratelimit_process(settings, tmp_path / "ratelimit-1.log"),
        ratelimit_process(settings, tmp_path / "ratelimit-2.log"),
    ):
        await _thousand_requests(settings, other)
    after = metric("rate_limit_hits_total", {"class": "read", "key_type": "ip"})
    assert after - before == 900


async def _thousand_requests(settings: Settings, other: Settings) -> None:
    async with gateway_replica(settings) as gateway_1, gateway_replica(other) as gateway_2:
        clients = [gateway_1.client("198.51.100.23"), gateway_2.client("198.51.100.23")]
        responses = await asyncio.gather(*(clients[i % 2].get("/api/agents") for i in range(1000)))
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: 100, 429: 900}
        # Both gateways answered half, and each alone could have admitted 100.
        by_gateway = Counter(i % 2 for i, r in enumerate(responses) if r.status_code == 429)
        assert sum(by_gateway.values()) == 900 and all(by_gateway[g] >= 400 for g in (0, 1))

        refused = next(r for r in responses if r.status_code == 429)
        assert refused.headers["X-RateLimit-Limit"] == "100"
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert int(refused.headers["Retry-After"]) >= 1
        assert int(refused.headers["X-RateLimit-Reset"]) > 0
        body = refused.json()
        assert body["status_code"] == 429 and body["class"] == "read"
        assert body["limit"] == 100 and body["remaining"] == 0 and body["retry_after"] >= 1
        admitted = [r for r in responses if r.status_code == 200]
        remaining = sorted(int(r.headers["X-RateLimit-Remaining"]) for r in admitted)
        assert remaining == list(range(100))  # each admission saw the shared count

        stats = (await clients[0].get("/api/system/rate-limits")).json()
        assert stats["backend"] == "redis" and stats["redis"] == "up"
        assert stats["hits_by_class"]["read"] == 900  # every refusal was made in Redis
        assert stats["top_limited"][0] == {
            "key": "ip:198.51.100.23",
            "endpoint_class": "read",
            "hits": stats["top_limited"][0]["hits"],
        }
        for client in clients:
            await client.aclose()


async def test_redis_script_is_gcra_not_a_fixed_window(settings) -> None:
    """A budget refills evenly: past a full burst, one more is admitted per interval."""
    store = RedisStore(SHARED_REDIS, settings.rate_limit_prefix)
    budgets = [("read:ip:203.0.113.9", 10)]
    try:
        # 10 per 20 s: one more every 2 s, so a slow (loaded) machine cannot blur it.
        outcomes = [await store.check(budgets, 20.0, 1, "read", "ip:x") for _ in range(12)]
        assert [o.allowed for o in outcomes] == [True] * 10 + [False] * 2
        assert 0 < outcomes[-1].retry_after_seconds <= 2.0
        await asyncio.sleep(outcomes[-1].retry_after_seconds + 0.05)  # one interval: one more
        again = [await store.check(budgets, 20.0, 1, "read", "ip:x") for _ in range(2)]
        assert [o.allowed for o in again] == [True, False]
        peeked = await store.peek(budgets, 20.0)
        assert peeked[0][0] == 0
    finally:
        await store.aclose()
