"""The gateway's HTTP metrics by route template, and METRICS_ENABLED=false."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from aragora.runtime.natsserver import EmbeddedNats
from tests.conftest import make_settings
from tests.integration.gateway_harness import Gateway, metric, open_gateway

pytestmark = pytest.mark.integration


async def test_requests_are_counted_by_route_template_not_path(gateway: Gateway) -> None:
    labels = {"method": "GET", "route": "/api/debates/{debate_id}", "status": "404"}
    before = metric("aragora_http_requests_total", labels)
    for _ in range(3):  # three different paths, one route
        response = await gateway.client.get(f"/api/debates/{uuid.uuid4()}")
        assert response.status_code == 404
    assert metric("aragora_http_requests_total", labels) == before + 3
    body = (await gateway.client.get("/metrics")).text
    assert 'aragora_http_request_duration_seconds_bucket{le="0.005",method="GET"' in body
    assert "/api/debates/{debate_id}" in body


async def test_metrics_enabled_false_switches_the_endpoint_off(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, nats_url=nats_server.url, metrics_enabled=False)
    async with open_gateway(settings) as gw:
        assert (await gw.client.get("/metrics")).status_code == 404
        assert (await gw.client.get("/api/metrics")).status_code == 404
        assert (await gw.client.get("/api/health")).status_code == 200
