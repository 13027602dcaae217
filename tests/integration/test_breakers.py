"""Circuit breakers shared through NATS KV by runner replicas, and the gateway's routes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from aragora.agent_runner.providers import ProviderError
from aragora.agent_runner.providers.base import DeltaFn, TurnOutput
from aragora.agent_runner.service import TurnRunner
from aragora.contracts import codec, subjects
from aragora.contracts.messages import AgentTurnFailed, AgentTurnSucceeded, RunTurn
from aragora.runtime import bus
from aragora.runtime.agents import load_registry
from aragora.runtime.breakers import KVBreakerStore
from aragora.runtime.natsserver import EmbeddedNats
from tests.conftest import make_settings
from tests.integration.gateway_harness import open_gateway
from tests.integration.test_agent_runner import _turn


class StubProvider:
    """Counts calls; fails while ``failing`` is set."""

    kind = "demo"

    def __init__(self) -> None:
        self.calls = 0
        self.failing = True

    async def run_turn(
        self, command: RunTurn, *, deadline: float, on_delta: DeltaFn | None = None
    ) -> TurnOutput:
        self.calls += 1
        if self.failing:
            raise ProviderError("provider_error", "HTTP 503")
        return TurnOutput(content="fine", model="stub")

    async def aclose(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient() as client:
        yield client


async def test_replicas_share_one_breaker_and_a_gateway_reset_reaches_them(
    nats_server: EmbeddedNats,
    tmp_path: Path,
    http: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARAGORA_BREAKER_DEMO_FAILURES", "3")
    settings = make_settings(tmp_path, nats_url=nats_server.url)
    one = await bus.connect([nats_server.url], name="runner-1")
    two = await bus.connect([nats_server.url], name="runner-2")
    await bus.ensure_streams(one.js)
    events = await one.nc.subscribe(subjects.BREAKER_EVENTS)
    clock = Clock()
    stub = StubProvider()
    runners = [
        TurnRunner(load_registry(settings), settings, c.js, http, clock=clock) for c in (one, two)
    ]
    for runner in runners:
        runner._providers["demo-1"] = stub  # type: ignore[assignment]

    for runner in (runners[0], runners[1], runners[0]):
        failed = await runner.run_turn(_turn("demo-1"))
        assert isinstance(failed, AgentTurnFailed) and failed.detail == "HTTP 503"
    assert stub.calls == 3
    state = await KVBreakerStore(one.js).get("demo-1")
    assert state.state == "open" and state.consecutive_failures == 3

    event = codec.decode_breaker_event((await events.next_msg(timeout=5)).data)
    assert (event.agent, event.previous, event.state) == ("demo-1", "closed", "open")

    # Open: the other replica refuses without calling the provider.
    refused = await runners[1].run_turn(_turn("demo-1"))
    assert isinstance(refused, AgentTurnFailed) and refused.reason == "provider_error"
    assert refused.detail.startswith("circuit breaker open for demo-1 until ")
    assert stub.calls == 3
    # Other agents are unaffected; unknown agents never touch a breaker.
    ok = await runners[1].run_turn(_turn("demo-2"))
    assert isinstance(ok, AgentTurnSucceeded)
    unknown = await runners[1].run_turn(_turn("nobody"))
    assert isinstance(unknown, AgentTurnFailed) and unknown.reason == "unknown_agent"

    async with open_gateway(settings) as gw:
        for path in ("/api/agents/circuit-breakers", "/api/system/circuit-breakers"):
            response = await gw.client.get(path)
            assert response.status_code == 200, response.text
            body = response.json()
            by_agent = {a["agent"]: a for a in body["agents"]}
            assert by_agent["demo-1"]["state"] == "open"
            assert by_agent["demo-1"]["open_until"] is not None
            assert by_agent["demo-2"]["state"] == "closed"
            assert by_agent["demo-1"]["provider"] == "demo"
            assert (body["open"], body["half_open"]) == (1, 0)
        health = (await gw.client.get("/api/health")).json()
        assert health["checks"]["circuit_breakers"] == {"open": 1, "half_open": 0}
        # The agent route still answers its own paths.
        assert (await gw.client.get("/api/agents/demo-1")).json()["name"] == "demo-1"

        missing = await gw.client.post("/api/agents/nobody/reset-circuit")
        assert missing.status_code == 404
        reset = await gw.client.post("/api/agents/demo-1/reset-circuit")
        assert reset.status_code == 200, reset.text
        assert (reset.json()["state"], reset.json()["previous"]) == ("closed", "open")
        health = (await gw.client.get("/api/health")).json()
        assert health["checks"]["circuit_breakers"] == {"open": 0, "half_open": 0}

    event = codec.decode_breaker_event((await events.next_msg(timeout=5)).data)
    assert (event.previous, event.state, event.reason) == ("open", "closed", "reset by operator")
    stub.failing = False
    ok = await runners[0].run_turn(_turn("demo-1"))  # the reset is seen: the provider is called
    assert isinstance(ok, AgentTurnSucceeded) and stub.calls == 4
    await one.close()
    await two.close()


async def test_half_open_admits_one_trial_call_across_replicas(
    nats_server: EmbeddedNats,
    tmp_path: Path,
    http: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARAGORA_BREAKER_DEMO_FAILURES", "2")
    monkeypatch.setenv("ARAGORA_BREAKER_DEMO_COOLDOWN_SECONDS", "30")
    settings = make_settings(tmp_path)
    conns = [await bus.connect([nats_server.url], name=f"runner-{i}") for i in range(3)]
    await bus.ensure_streams(conns[0].js)
    clock = Clock()
    runners = [
        TurnRunner(load_registry(settings), settings, c.js, http, clock=clock) for c in conns
    ]
    for _ in range(2):
        await runners[0]._record("demo-3", ok=False)
    store = KVBreakerStore(conns[0].js)
    assert (await store.get("demo-3")).state == "open"
    assert await runners[1]._admit("demo-3") is not None

    clock.now += 31  # cooldown over: exactly one replica gets the trial call
    verdicts = await asyncio.gather(*(r._admit("demo-3") for r in runners * 2))
    assert sum(v is None for v in verdicts) == 1, verdicts
    assert all("half-open" in v for v in verdicts if v is not None)
    state = await store.get("demo-3")
    assert state.state == "half_open" and state.half_open_in_flight == 1

    await runners[2]._record("demo-3", ok=True)
    assert await runners[1]._admit("demo-3") is None  # the next trial
    await runners[1]._record("demo-3", ok=True)
    assert (await store.get("demo-3")).state == "closed"
    for c in conns:
        await c.close()
