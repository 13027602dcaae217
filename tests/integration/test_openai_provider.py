"""The OpenAI-compatible adapter against the real fake provider server, over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from functools import partial

import httpx
import pytest

from aragora.agent_runner.providers import OpenAICompatibleProvider, ProviderError, build_provider
from aragora.runtime.agents import AgentSpec
from aragora.runtime.settings import Settings
from tests.factories import run_turn
from tests.plugins.fake_provider import FakeProviderProcess, start_fake_provider

SECRET = "sk-test-SUPERSECRET-0123456789"


# A first-round proposal by gpt on tea vs coffee, with a 10 s budget.
turn = partial(
    run_turn,
    agent="gpt",
    stance="neutral",
    topic="Is tea better than coffee?",
    timeout_seconds=10.0,
)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def make(base_url: str, http: httpx.AsyncClient, key: str = "") -> OpenAICompatibleProvider:
    # Short backoff keeps retry tests fast; the retry policy itself is unchanged.
    return OpenAICompatibleProvider(
        http=http, base_url=base_url, model="fake-model", api_key=key, backoff_base_s=0.05
    )


async def test_success_returns_content_model_and_usage(
    fake_provider: FakeProviderProcess,
    http: httpx.AsyncClient,
) -> None:
    out = await make(fake_provider.base_url, http).run_turn(turn())
    assert "Is tea better than coffee?" in out.content
    assert out.model == "fake-model"
    assert out.prompt_tokens > 0 and out.completion_tokens > 0
    assert out.vote is None and out.structured and out.rejected_answers == []
    assert fake_provider.stats()["by_path"] == {"/v1/chat/completions": 1}


async def test_build_provider_sends_key_from_env(
    monkeypatch: pytest.MonkeyPatch, http: httpx.AsyncClient
) -> None:
    monkeypatch.setenv("FAKE_KEY", SECRET)
    with start_fake_provider("--require-key", SECRET) as server:
        spec = AgentSpec(
            name="gpt",
            provider="openai-compatible",
            model="m1",
            base_url=server.base_url,
            api_key_env="FAKE_KEY",
        )
        out = await build_provider(spec, Settings(), http).run_turn(turn())
    assert out.model == "m1"


async def test_429_retry_after_beyond_deadline_fails_fast(
    fake_provider: FakeProviderProcess,
    http: httpx.AsyncClient,
) -> None:
    fake_provider.configure(fail_mode="429", fail_count=1, retry_after=30)
    start = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await make(fake_provider.base_url, http).run_turn(turn(timeout_seconds=2.0))
    assert time.monotonic() - start < 1.0
    assert info.value.reason == "provider_error" and "429" in info.value.detail


async def test_connection_refused_is_retried_then_provider_error(http: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderError) as info:
        await make("http://127.0.0.1:9/v1", http).run_turn(turn())
    assert info.value.reason == "provider_error" and info.value.retryable


async def test_timeout_mode_hangs_until_client_timeout(
    fake_provider: FakeProviderProcess,
) -> None:
    fake_provider.configure(fail_mode="timeout")
    async with httpx.AsyncClient(timeout=0.2) as short:
        provider = make(fake_provider.base_url, short)
        with pytest.raises(ProviderError) as info:
            await provider.run_turn(turn())
    assert info.value.reason == "timeout"


async def test_wrong_key_is_rejected_and_never_leaks(http: httpx.AsyncClient) -> None:
    with start_fake_provider("--require-key", "the-right-key") as server:
        provider = make(server.base_url, http, key=SECRET)
        with pytest.raises(ProviderError) as info:
            await provider.run_turn(turn())
        assert server.stats()["requests"] == 1  # 401 is not retried
    err = info.value
    assert err.reason == "rejected" and not err.retryable
    assert "401" in err.detail
    for text in (str(err), repr(err), err.detail, repr(provider), str(vars(provider))):
        assert SECRET not in text
        assert "SUPERSECRET" not in text


async def test_missing_key_is_rejected(http: httpx.AsyncClient) -> None:
    with start_fake_provider("--require-key", "k") as server, pytest.raises(ProviderError) as info:
        await make(server.base_url, http).run_turn(turn())
    assert info.value.reason == "rejected"


async def test_streaming_endpoint_returns_valid_sse(
    fake_provider: FakeProviderProcess,
    http: httpx.AsyncClient,
) -> None:
    body = {
        "model": "m",
        "stream": True,
        "messages": [{"role": "user", "content": "Say something about streams."}],
    }
    pieces: list[str] = []
    events: list[str] = []
    async with http.stream("POST", f"{fake_provider.base_url}/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if line:
                assert line.startswith("data: ")
                events.append(line[len("data: ") :])
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks]
    assert "Say something about streams." in "".join(pieces)


async def test_control_api_reset_and_stats(
    fake_provider: FakeProviderProcess,
    http: httpx.AsyncClient,
) -> None:
    fake_provider.configure(latency_ms=100)
    start = time.monotonic()
    await make(f"{fake_provider.root_url}", http).run_turn(turn())  # un-prefixed path
    assert time.monotonic() - start >= 0.1
    assert fake_provider.stats()["by_path"] == {"/chat/completions": 1}
    fake_provider.reset()
    stats = fake_provider.stats()
    assert stats["requests"] == 0 and stats["config"]["latency_ms"] == 0
    bad = await http.post(f"{fake_provider.root_url}/_fake/config", json={"fail_rate": 2})
    assert bad.status_code == 400
