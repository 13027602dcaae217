"""The Anthropic Messages adapter against the real fake provider server, over HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial

import httpx
import pytest

from aragora.agent_runner.providers import AnthropicProvider, ProviderError, build_provider
from aragora.runtime.agents import AgentSpec
from aragora.runtime.settings import Settings
from tests.factories import run_turn
from tests.plugins.fake_provider import FakeProviderProcess, start_fake_provider

SECRET = "sk-ant-test-SUPERSECRET-0123456789"

turn = partial(
    run_turn,
    agent="claude",
    stance="neutral",
    topic="Is tea better than coffee?",
    timeout_seconds=10.0,
)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def make(root_url: str, http: httpx.AsyncClient, key: str = "") -> AnthropicProvider:
    # Short backoff keeps retry tests fast; the retry policy itself is unchanged.
    return AnthropicProvider(
        http=http, base_url=root_url, model="claude-test", api_key=key, backoff_base_s=0.05
    )


async def test_success_returns_content_model_and_usage(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient
) -> None:
    out = await make(fake_provider.root_url, http).run_turn(turn())
    assert "Is tea better than coffee?" in out.content
    assert out.model == "claude-test"
    assert out.prompt_tokens > 0 and out.completion_tokens > 0
    assert out.structured and out.vote is None
    assert fake_provider.stats()["by_path"] == {"/v1/messages": 1}


async def test_overloaded_is_529_and_gives_up_after_three_attempts(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient
) -> None:
    fake_provider.configure(fail_mode="overloaded")
    with pytest.raises(ProviderError) as info:
        await make(fake_provider.root_url, http).run_turn(turn())
    assert info.value.reason == "provider_error" and info.value.retryable
    assert "529" in info.value.detail and "overloaded" in info.value.detail
    assert fake_provider.stats()["requests"] == 3


async def test_wrong_key_is_rejected_and_never_leaks(http: httpx.AsyncClient) -> None:
    with start_fake_provider("--require-key", "the-right-key") as server:
        provider = make(server.root_url, http, key=SECRET)
        with pytest.raises(ProviderError) as info:
            await provider.run_turn(turn())
        assert server.stats()["requests"] == 1  # 401 is not retried
    err = info.value
    assert err.reason == "rejected" and not err.retryable
    assert "401" in err.detail
    for text in (str(err), repr(err), err.detail, repr(provider), str(vars(provider))):
        assert SECRET not in text
        assert "SUPERSECRET" not in text


async def test_build_provider_sends_key_from_env(
    monkeypatch: pytest.MonkeyPatch, http: httpx.AsyncClient
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    with start_fake_provider("--require-key", SECRET) as server:
        spec = AgentSpec(
            name="claude",
            provider="anthropic",
            model="claude-x",
            base_url=server.base_url,  # ".../v1" is accepted too
            api_key_env="ANTHROPIC_API_KEY",
        )
        provider = build_provider(spec, Settings(), http)
        assert isinstance(provider, AnthropicProvider)
        out = await provider.run_turn(turn())
    assert out.model == "claude-x"


async def test_missing_version_header_is_400(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient
) -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    response = await http.post(f"{fake_provider.base_url}/messages", json=body)
    assert response.status_code == 400
    assert response.json()["type"] == "error"


async def test_streaming_endpoint_returns_valid_sse(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient
) -> None:
    body = {
        "model": "claude-s",
        "max_tokens": 100,
        "stream": True,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say something about streams."}],
    }
    headers = {"anthropic-version": "2023-06-01"}
    events: list[tuple[str, dict[str, object]]] = []
    async with http.stream(
        "POST", f"{fake_provider.base_url}/messages", json=body, headers=headers
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        name = ""
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
                assert data["type"] == name
                events.append((name, data))
            else:
                assert line == ""
    names = [n for n, _ in events]
    assert names[:2] == ["message_start", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert isinstance(start, dict) and start["model"] == "claude-s"
    text = "".join(
        d["delta"]["text"]  # type: ignore[index]
        for n, d in events
        if n == "content_block_delta"
    )
    assert "Say something about streams." in text
    assert events[-2][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
