"""Token streaming: the HTTP adapters against the fake provider's SSE, and the runner's deltas.

Streaming changes how an answer arrives, never what it is: the output of a streamed turn
equals the plain turn's, and the deltas the runner publishes on core NATS join up to the
answer's text.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from nats.aio.msg import Msg

from aragora.agent_runner.providers import (
    AnthropicProvider,
    GeminiProvider,
    OpenAICompatibleProvider,
    ProviderError,
)
from aragora.agent_runner.providers.http_retry import HttpProvider
from aragora.agent_runner.service import TurnRunner
from aragora.contracts import codec, subjects
from aragora.contracts.messages import AgentTurnSucceeded, TokenDelta
from aragora.runtime import bus
from aragora.runtime.agents import load_registry
from aragora.runtime.natsserver import EmbeddedNats
from tests.conftest import make_settings
from tests.factories import run_turn
from tests.plugins.fake_provider import FakeProviderProcess


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def _providers(fake: FakeProviderProcess, http: httpx.AsyncClient) -> dict[str, HttpProvider]:
    root, fast = fake.root_url, 0.05
    return {
        "openai": OpenAICompatibleProvider(
            http=http, base_url=fake.base_url, model="fake-model", backoff_base_s=fast
        ),
        "anthropic": AnthropicProvider(
            http=http, base_url=root, model="claude-test", backoff_base_s=fast
        ),
        "gemini": GeminiProvider(
            http=http, base_url=root, model="gemini-test", backoff_base_s=fast
        ),
    }


@pytest.mark.parametrize("api", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("phase", ["propose", "vote"])
async def test_a_streamed_turn_gives_the_same_output_plus_deltas(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient, api: str, phase: str
) -> None:
    provider = _providers(fake_provider, http)[api]
    command = run_turn(phase=phase, agent="gpt", candidates=["claude", "gpt"])
    plain = await provider.run_turn(command)
    pieces: list[str] = []

    async def on_delta(piece: str) -> None:
        pieces.append(piece)

    streamed = await provider.run_turn(command, on_delta=on_delta)
    assert streamed == plain
    assert len(pieces) >= 2  # the fake sends a few words per event
    assert plain.completion_tokens > 0 and plain.prompt_tokens > 0
    if phase == "propose":
        assert "".join(pieces).strip() == plain.content
    paths = fake_provider.stats()["by_path"]
    assert sum(paths.values()) == 2


async def test_a_streamed_call_is_retried_before_its_first_byte(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient
) -> None:
    provider = _providers(fake_provider, http)["openai"]
    fake_provider.configure(fail_mode="500", fail_count=2)
    pieces: list[str] = []

    async def on_delta(piece: str) -> None:
        pieces.append(piece)

    out = await provider.run_turn(run_turn(agent="gpt"), on_delta=on_delta)
    assert out.structured and "".join(pieces).strip() == out.content


async def test_a_malformed_stream_fails_the_call(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient
) -> None:
    provider = _providers(fake_provider, http)["openai"]
    fake_provider.configure(fail_mode="malformed", fail_count=1)

    async def on_delta(piece: str) -> None:
        pass

    with pytest.raises(ProviderError) as raised:
        await provider.run_turn(run_turn(agent="gpt"), on_delta=on_delta)
    assert raised.value.reason == "provider_error"
    assert "malformed stream event" in raised.value.detail


async def test_the_runner_publishes_coalesced_deltas_before_the_result(
    nats_server: EmbeddedNats, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    settings = make_settings(tmp_path, nats_url=nats_server.url, demo_latency_ms=240)
    conn = await bus.connect(settings.nats_servers, name="test-stream", connect_timeout=5)
    try:
        await bus.ensure_streams(conn.js)
        received: list[TokenDelta] = []

        async def collect(msg: Msg) -> None:
            received.append(codec.decode_token_delta(msg.data))

        command = run_turn(agent="demo-1", debate_id="d-stream", turn_id=str(uuid.uuid4()))
        sub = await conn.nc.subscribe(subjects.token_delta_subject("d-stream"), cb=collect)
        runner = TurnRunner(load_registry(settings), settings, conn.js, http, live=conn.nc)
        result = await runner.run_turn(command)
        await conn.nc.flush()
        await asyncio.sleep(0.1)
        await sub.unsubscribe()
    finally:
        await conn.close()
    assert isinstance(result, AgentTurnSucceeded)
    assert [d.index for d in received] == list(range(len(received)))
    assert len(received) >= 2 and received[-1].done
    assert not any(d.done for d in received[:-1])
    assert {(d.turn_id, d.agent, d.phase, d.round) for d in received} == {
        (command.turn_id, "demo-1", "propose", 1)
    }
    assert "".join(d.text for d in received).strip() == result.content
