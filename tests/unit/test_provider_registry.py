"""The built-in `claude`, `gemini` and `gpt-4` agents, mapped from provider env vars."""

from __future__ import annotations

import httpx
import pytest

from aragora.agent_runner.providers import (
    AnthropicProvider,
    GeminiProvider,
    OpenAICompatibleProvider,
    build_provider,
)
from aragora.runtime.agents import load_registry
from aragora.runtime.settings import load_settings


def test_no_provider_env_registers_none_of_them() -> None:
    registry = load_registry(load_settings({}))
    assert registry.unknown(["claude", "gemini", "gpt-4"]) == ["claude", "gemini", "gpt-4"]


def test_keys_register_claude_gemini_and_gpt4_with_their_defaults() -> None:
    env = {
        "ANTHROPIC_API_KEY": "sk-ant-secret-1",
        "GEMINI_API_KEY": "AIzaSecretValue123",
        "OPENAI_API_KEY": "sk-secret-2",
    }
    registry = load_registry(load_settings(env))
    claude, gemini, gpt4 = (registry.get(n) for n in ("claude", "gemini", "gpt-4"))
    assert claude is not None and gemini is not None and gpt4 is not None
    assert (claude.provider, claude.model) == ("anthropic", "claude-sonnet-4-5")
    assert (claude.base_url, claude.api_key_env) == (
        "https://api.anthropic.com",
        "ANTHROPIC_API_KEY",
    )
    assert (gemini.provider, gemini.model) == ("gemini", "gemini-2.5-flash")
    assert gemini.base_url == "https://generativelanguage.googleapis.com"
    assert gemini.api_key_env == "GEMINI_API_KEY"
    assert (gpt4.provider, gpt4.model) == ("openai-compatible", "gpt-4o")
    assert gpt4.base_url == "https://api.openai.com/v1" and gpt4.api_key_env == "OPENAI_API_KEY"
    # The alias is not a second default debater.
    assert registry.default_agents == ["openai", "claude", "gemini"]
    assert registry.mode == "providers"
    for secret in env.values():
        assert secret not in repr(registry)


def test_base_urls_alone_register_stand_in_servers() -> None:
    env = {"ANTHROPIC_BASE_URL": "http://127.0.0.1:1", "GEMINI_BASE_URL": "http://127.0.0.1:2"}
    registry = load_registry(load_settings(env))
    claude, gemini = registry.get("claude"), registry.get("gemini")
    assert claude is not None and claude.base_url == "http://127.0.0.1:1"
    assert gemini is not None and gemini.base_url == "http://127.0.0.1:2"
    assert registry.get("gpt-4") is None
    assert registry.default_agents == ["claude", "gemini"]


def test_openai_alone_keeps_its_old_default() -> None:
    registry = load_registry(load_settings({"OPENAI_BASE_URL": "http://127.0.0.1:3/v1"}))
    gpt4 = registry.get("gpt-4")
    assert gpt4 is not None and gpt4.base_url == "http://127.0.0.1:3/v1"
    assert registry.default_agents == ["openai", "demo-1"]


async def test_build_provider_picks_the_adapter_of_each_kind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        "ANTHROPIC_API_KEY": "sk-ant-key-1234",
        "GEMINI_API_KEY": "AIzaKey12345678",
        "OPENAI_API_KEY": "sk-openai-key-1234",
    }
    for name in env:
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(env)
    registry = load_registry(settings)
    expected = {
        "claude": (AnthropicProvider, "https://api.anthropic.com/v1/messages"),
        "gemini": (
            GeminiProvider,
            "https://generativelanguage.googleapis.com/v1beta/models/"
            "gemini-2.5-flash:generateContent",
        ),
        "gpt-4": (OpenAICompatibleProvider, "https://api.openai.com/v1/chat/completions"),
    }
    async with httpx.AsyncClient() as http:
        for name, (cls, url) in expected.items():
            spec = registry.get(name)
            assert spec is not None
            provider = build_provider(spec, settings, http)
            assert isinstance(provider, cls)
            assert url in repr(provider)
            # Keys come from Settings when the env var is unset; never shown.
            assert provider._api_key.reveal() == env[spec.api_key_env]
            assert env[spec.api_key_env] not in repr(provider)
