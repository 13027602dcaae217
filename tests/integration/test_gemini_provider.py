"""The Gemini adapter against the real fake provider server, over HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial

import httpx
import pytest

from aragora.agent_runner.providers import GeminiProvider, ProviderError, build_provider
from aragora.runtime.agents import AgentSpec
from aragora.runtime.settings import Settings
from tests.factories import run_turn
from tests.plugins.fake_provider import FakeProviderProcess, start_fake_provider

SECRET = "AIzaTestSUPERSECRET0123456789"

turn = partial(
    run_turn,
    agent="gemini",
    stance="neutral",
    topic="Is tea better than coffee?",
    timeout_seconds=10.0,
)
GENERATE = "/v1beta/models/gemini-test:generateContent"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def make(root_url: str, http: httpx.AsyncClient, key: str = "") -> GeminiProvider:
    # Short backoff keeps retry tests fast; the retry policy itself is unchanged.
    return GeminiProvider(
        http=http, base_url=root_url, model="gemini-test", api_key=key, backoff_base_s=0.05
    )


async def test_success_returns_content_model_and_usage(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient
) -> None:
    out = await make(fake_provider.root_url, http).run_turn(turn())
    assert "Is tea better than coffee?" in out.content
    assert out.model == "gemini-test"
    assert out.prompt_tokens > 0 and out.completion_tokens > 0
    assert out.structured and out.vote is None
    assert fake_provider.stats()["by_path"] == {GENERATE: 1}


async def test_wrong_key_is_rejected_and_never_leaks(http: httpx.AsyncClient) -> None:
    with start_fake_provider("--require-key", "the-right-key") as server:
        provider = make(server.root_url, http, key=SECRET)
        with pytest.raises(ProviderError) as info:
            await provider.run_turn(turn())
        assert server.stats()["requests"] == 1  # 400 INVALID_ARGUMENT is not retried
    err = info.value
    assert err.reason == "rejected" and not err.retryable
    assert "400" in err.detail
    for text in (str(err), repr(err), err.detail, repr(provider), str(vars(provider))):
        assert SECRET not in text
        assert "SUPERSECRET" not in text


async def test_missing_key_is_rejected(http: httpx.AsyncClient) -> None:
    with start_fake_provider("--require-key", "k") as server, pytest.raises(ProviderError) as info:
        await make(server.root_url, http).run_turn(turn())
    assert info.value.reason == "rejected" and "403" in info.value.detail


async def test_key_query_param_is_accepted(http: httpx.AsyncClient) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    with start_fake_provider("--require-key", SECRET) as server:
        url = f"{server.root_url}{GENERATE}"
        assert (await http.post(url, params={"key": SECRET}, json=body)).status_code == 200
        assert (await http.post(url, json=body)).status_code == 403


async def test_build_provider_sends_key_from_env(
    monkeypatch: pytest.MonkeyPatch, http: httpx.AsyncClient
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    with start_fake_provider("--require-key", SECRET) as server:
        spec = AgentSpec(
            name="gemini",
            provider="gemini",
            model="gemini-x",
            base_url=server.root_url,
            api_key_env="GEMINI_API_KEY",
        )
        provider = build_provider(spec, Settings(), http)
        assert isinstance(provider, GeminiProvider)
        out = await provider.run_turn(turn())
    assert out.model == "gemini-x"


async def test_streaming_endpoint_returns_valid_sse(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient
) -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "Say something about streams."}]}],
    }
    url = f"{fake_provider.root_url}/v1beta/models/gemini-s:streamGenerateContent"
    chunks: list[dict[str, object]] = []
    async with http.stream("POST", url, params={"alt": "sse"}, json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if line:
                assert line.startswith("data: ")
                chunks.append(json.loads(line[len("data: ") :]))
    assert len(chunks) > 1
    text = "".join(
        c["candidates"][0]["content"]["parts"][0]["text"]  # type: ignore[index]
        for c in chunks
    )
    assert "Say something about streams." in text
    last = chunks[-1]
    assert last["candidates"][0]["finishReason"] == "STOP"  # type: ignore[index]
    assert last["usageMetadata"]["candidatesTokenCount"] > 0  # type: ignore[index]
    # Without alt=sse the stream is one JSON array of the same chunks.
    plain = await http.post(url, json=body)
    assert plain.status_code == 200 and plain.json() == chunks
