"""The agent-runner's HTTP client spreads provider calls over several connection pools."""

from __future__ import annotations

import httpx
import pytest

from aragora.agent_runner.traced_http import ShardedTransport, http_client


@pytest.mark.parametrize(("in_flight", "shards"), [(1, 1), (32, 1), (64, 2), (100, 4), (5000, 32)])
def test_pools_of_about_32_and_at_most_32(in_flight: int, shards: int) -> None:
    transport = ShardedTransport(in_flight)
    assert len(transport.shards) == shards
    per_shard = [s._pool._max_connections for s in transport.shards]  # type: ignore[attr-defined]
    assert sum(per_shard) >= in_flight and max(per_shard) - min(per_shard) == 0


async def test_requests_go_round_robin_over_the_pools() -> None:
    transport = ShardedTransport(96)
    seen: list[int] = []
    for index, _ in enumerate(transport.shards):
        transport.shards[index] = httpx.MockTransport(
            lambda request, index=index: seen.append(index) or httpx.Response(200)
        )
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(6):
            assert (await client.get("http://provider.test/v1/models")).status_code == 200
    assert seen == [0, 1, 2, 0, 1, 2]


def test_a_proxy_in_the_environment_keeps_httpx_in_charge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    client = http_client(64)
    assert not isinstance(client._transport, ShardedTransport)
    monkeypatch.delenv("HTTPS_PROXY")
    assert isinstance(http_client(64)._transport, ShardedTransport)
