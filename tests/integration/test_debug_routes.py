"""Debug routes end to end: the real gateway app asks a real agent-runner responder over NATS.

``POST /api/debug/agent-test`` and ``POST /api/debug/connectivity-check`` go through
``aragora.rpc.agent.*`` request/reply; the runner side is ``AgentRpc`` as the agent-runner
process wires it, talking to the fake OpenAI-compatible provider subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from aragora.agent_runner.rpc import AgentRpc
from aragora.contracts.rpc import ConnectivityRequest
from aragora.runtime import bus
from aragora.runtime.agents import load_registry
from aragora.runtime.natsserver import EmbeddedNats
from aragora.runtime.settings import Settings
from tests.conftest import make_settings
from tests.integration.gateway_harness import Gateway, open_gateway
from tests.plugins.fake_provider import FakeProviderProcess

SECRET = "sk-test-debug-secret-0123456789"


@contextlib.contextmanager
def agent_runner(settings: Settings) -> Iterator[None]:
    """``AgentRpc`` wired as the agent-runner wires it, on its own thread and event loop.

    Its own loop, like a separate process: the test client blocks the test's loop while
    the app handles a request, so a responder on that loop could never answer.
    """
    ready = threading.Event()
    control: dict[str, Any] = {}

    async def serve() -> None:
        control["loop"], control["stop"] = asyncio.get_running_loop(), asyncio.Event()
        conn = await bus.connect(settings.nats_servers, name="test-agent-runner")
        async with httpx.AsyncClient(timeout=httpx.Timeout(None, connect=10.0)) as http:
            rpc = AgentRpc(load_registry(settings), settings, http)
            await rpc.start(conn.nc)
            await conn.nc.flush()
            ready.set()
            await control["stop"].wait()
            await rpc.stop()
        await conn.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(15), "the agent-runner responder did not start"
        yield
    finally:
        if "loop" in control:
            control["loop"].call_soon_threadsafe(control["stop"].set)
        thread.join(15)


@pytest.fixture
def settings(
    nats_server: EmbeddedNats, fake_provider: FakeProviderProcess, tmp_path: Path
) -> Settings:
    return make_settings(
        tmp_path,
        nats_url=nats_server.url,
        openai_base_url=fake_provider.base_url,
        openai_api_key=SECRET,
    )


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    with agent_runner(settings):
        async with open_gateway(settings) as gw:
            yield gw


async def test_demo_agent_test_returns_text(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/api/debug/agent-test", json={"agent": "demo-1", "prompt": "Is tea better than coffee?"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["agent"] == "demo-1"
    assert body["provider"] == "demo"
    assert body["text"]
    assert body["completion_tokens"] > 0
    assert "error" not in body


async def test_runbook_curl_without_prompt_or_json_content_type(gateway: Gateway) -> None:
    # curl -d '{"agent":"demo-2"}' sends application/x-www-form-urlencoded.
    response = await gateway.client.post(
        "/api/debug/agent-test",
        content=b'{"agent":"demo-2"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["text"]


async def test_openai_agent_against_the_fake_provider(
    gateway: Gateway, fake_provider: FakeProviderProcess
) -> None:
    response = await gateway.client.post("/api/debug/agent-test", json={"agent": "openai"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["provider"] == "openai-compatible"
    assert body["text"]
    assert body["prompt_tokens"] > 0
    assert body["completion_tokens"] > 0
    assert body["latency_ms"] >= 0
    assert fake_provider.stats()["by_path"] == {"/v1/chat/completions": 1}


async def test_provider_errors_are_data_without_the_key(
    gateway: Gateway, fake_provider: FakeProviderProcess
) -> None:
    fake_provider.configure(fail_mode="500", fail_count=100)
    response = await gateway.client.post(
        "/api/debug/agent-test", json={"agent": "openai", "prompt": "hi"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error"] == "provider_error"
    assert "500" in body["detail"]
    assert "text" not in body or not body["text"]
    assert SECRET not in response.text


async def test_unknown_agent_is_404_listing_the_known_ones(gateway: Gateway) -> None:
    response = await gateway.client.post("/api/debug/agent-test", json={"agent": "nobody"})
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "nobody" in detail
    assert "demo-1" in detail
    assert "openai" in detail
    bad = await gateway.client.post("/api/debug/agent-test", content=b"not json")
    assert bad.status_code == 400


async def test_connectivity_check_against_the_fake_server(gateway: Gateway) -> None:
    response = await gateway.client.post("/api/debug/connectivity-check")
    assert response.status_code == 200, response.text
    body = response.json()
    agents: dict[str, Any] = body["agents"]
    assert agents["demo-1"] == {"provider": "demo", "status": "offline (no network needed)"}
    openai = agents["openai"]
    assert openai["provider"] == "openai-compatible"
    assert openai["dns"]["status"] == "ok"
    assert openai["tcp"]["status"] == "ok"
    assert openai["tls"]["status"] == "skipped"
    assert openai["auth"]["status"] == "ok"
    assert openai["status"] == "ok"
    assert body["ok"] is True
    assert SECRET not in response.text


async def test_connectivity_reports_an_unreachable_provider(tmp_path: Path) -> None:
    # Nothing listens on port 9 of localhost: TCP fails and the later steps are skipped.
    check = await _connectivity_of("http://127.0.0.1:9/v1", tmp_path)
    assert check["dns"]["status"] == "ok"
    assert check["tcp"]["status"] == "error"
    assert check["auth"]["status"] == "skipped"
    assert check["status"] == "error"


async def _connectivity_of(base_url: str, tmp_path: Path) -> dict[str, Any]:
    settings = make_settings(tmp_path, openai_base_url=base_url)
    async with httpx.AsyncClient() as http:
        rpc = AgentRpc(load_registry(settings), settings, http)
        reply = await rpc.connectivity(ConnectivityRequest(agents=["openai"]))
    result: dict[str, Any] = msgspec.to_builtins(reply.agents["openai"])
    return result


async def test_no_runner_is_503(nats_server: EmbeddedNats, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, nats_url=nats_server.url)
    async with open_gateway(settings) as gw:
        response = await gw.client.post("/api/debug/agent-test", json={"agent": "demo-1"})
        assert response.status_code == 503
        assert "no agent-runner answered" in response.json()["detail"]
        response = await gw.client.post("/api/debug/connectivity-check")
        assert response.status_code == 503
