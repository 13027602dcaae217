"""Fallback chains, OpenRouter/Mistral built-ins, YAML agents files, quota errors, vendors."""

from __future__ import annotations

from pathlib import Path

import pytest

from aragora.agent_runner.breaker import policy_for, vendor
from aragora.agent_runner.providers.http_retry import is_quota_error
from aragora.runtime.agents import AgentSpec, load_registry
from aragora.runtime.settings import SettingsError, load_settings


def test_openrouter_and_mistral_keys_register_agents_and_openrouter_is_the_fallback() -> None:
    env = {"OPENROUTER_API_KEY": "sk-or-1", "MISTRAL_API_KEY": "m-1", "ANTHROPIC_API_KEY": "x"}
    registry = load_registry(load_settings(env))
    openrouter, mistral = registry.get("openrouter"), registry.get("mistral")
    assert openrouter is not None and mistral is not None
    assert (openrouter.base_url, openrouter.model) == (
        "https://openrouter.ai/api/v1",
        "openai/gpt-4o-mini",
    )
    assert (mistral.base_url, mistral.api_key_env) == (
        "https://api.mistral.ai/v1",
        "MISTRAL_API_KEY",
    )
    assert registry.fallback_chain("claude") == ["openrouter"]
    assert registry.fallback_chain("openrouter") == []  # never its own fallback


def test_without_openrouter_there_is_no_default_fallback() -> None:
    assert load_registry(load_settings({})).fallback_chain("demo-1") == []


def test_env_chain_and_none() -> None:
    env = {"ARAGORA_FALLBACK_AGENTS": "demo-2, demo-3"}
    assert load_registry(load_settings(env)).fallback_chain("demo-2") == ["demo-3"]
    env = {"OPENROUTER_API_KEY": "k", "ARAGORA_FALLBACK_AGENTS": "none"}
    assert load_registry(load_settings(env)).fallback_chain("demo-1") == []
    with pytest.raises(SettingsError, match="unknown agents"):
        load_registry(load_settings({"ARAGORA_FALLBACK_AGENTS": "nobody"}))


def test_yaml_agents_file_declares_fallback_and_prices(tmp_path: Path) -> None:
    path = tmp_path / "agents.yml"
    path.write_text(
        "default: [local, demo-1]\n"
        "agents:\n"
        "  - name: local\n"
        "    provider: openai-compatible\n"
        "    model: llama3\n"
        "    base_url: http://localhost:11434/v1\n"
        "    persona: a careful economist\n"
        "    fallback: [demo-2, demo-3]\n"
        "    input_usd_per_mtok: 0.5\n"
        "    output_usd_per_mtok: 1.5\n"
    )
    registry = load_registry(load_settings({"ARAGORA_AGENTS_FILE": str(path)}))
    local = registry.get("local")
    assert local is not None and local.persona == "a careful economist"
    assert (local.input_usd_per_mtok, local.output_usd_per_mtok) == (0.5, 1.5)
    assert registry.fallback_chain("local") == ["demo-2", "demo-3"]
    assert registry.default_agents == ["local", "demo-1"]


def test_agents_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "agents.yaml"
    bad.write_text("agents:\n  - name: x\n    provider: carrier-pigeon\n")
    with pytest.raises(SettingsError, match=r"agents\.yaml"):
        load_registry(load_settings({"ARAGORA_AGENTS_FILE": str(bad)}))
    bad.write_text("agents:\n  - name: x\n    provider: demo\n    fallback: [ghost]\n")
    with pytest.raises(SettingsError, match="ghost"):
        load_registry(load_settings({"ARAGORA_AGENTS_FILE": str(bad)}))


@pytest.mark.parametrize(
    ("status", "message", "quota"),
    [
        (429, "You exceeded your current quota, please check your plan and billing details.", True),
        (400, "Your credit balance is too low to access the Anthropic API.", True),
        (402, "Insufficient credits. Add more using https://openrouter.ai/settings/credits", True),
        (403, "Quota exceeded for this project", True),
        (429, "Rate limit reached for requests. Please try again later.", False),
        (400, "messages: field required", False),
        (500, "quota service unavailable", False),
    ],
)
def test_quota_errors_are_told_from_rate_limits(status: int, message: str, quota: bool) -> None:
    assert is_quota_error(status, message) is quota


@pytest.mark.parametrize(
    ("provider", "base_url", "expected"),
    [
        ("anthropic", "https://api.anthropic.com", "anthropic"),
        ("openai-compatible", "https://api.openai.com/v1", "openai"),
        ("openai-compatible", "https://openrouter.ai/api/v1", "openrouter"),
        ("openai-compatible", "https://api.mistral.ai/v1", "mistral"),
        ("openai-compatible", "http://localhost:11434/v1", "default"),
        ("demo", "", "demo"),
    ],
)
def test_breaker_policy_follows_the_vendor_behind_the_base_url(
    provider: str, base_url: str, expected: str
) -> None:
    spec = AgentSpec(name="a", provider=provider, base_url=base_url)  # type: ignore[arg-type]
    assert vendor(spec) == expected
    assert policy_for(vendor(spec), {}) == policy_for(expected, {})
    assert policy_for("openrouter", {}).cooldown_seconds == 90
