"""Settings from env vars and the agent registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from aragora.runtime.agents import load_registry
from aragora.runtime.settings import SettingsError, load_settings


def test_defaults_are_the_embedded_mode() -> None:
    s = load_settings({})
    assert (s.api_port, s.ws_port, s.nats_port) == (8080, 8766, 4250)
    assert s.nats_servers == ["nats://127.0.0.1:4250"]
    assert not s.uses_postgres
    assert s.consensus_threshold == 0.6


def test_env_vars_are_parsed_by_type() -> None:
    s = load_settings(
        {
            "ARAGORA_API_PORT": "9000",
            "ARAGORA_CONSENSUS_THRESHOLD": "0.75",
            "ARAGORA_DATA_DIR": "/tmp/x",
            "ARAGORA_NATS_URL": "nats://a:1, nats://b:2",
            "ARAGORA_DATABASE_URL": "postgresql://u@h/db",
        }
    )
    assert s.api_port == 9000
    assert s.consensus_threshold == 0.75
    assert s.data_dir == Path("/tmp/x")
    assert s.nats_servers == ["nats://a:1", "nats://b:2"]
    assert s.uses_postgres


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ARAGORA_API_PORT": "http"}, "ARAGORA_API_PORT='http' is not a valid int"),
        ({"ARAGORA_CONSENSUS_THRESHOLD": "1.5"}, "ARAGORA_CONSENSUS_THRESHOLD"),
        ({"ARAGORA_DEFAULT_ROUNDS": "13"}, "ARAGORA_DEFAULT_ROUNDS"),
        ({"ARAGORA_DATABASE_URL": "mysql://x"}, "ARAGORA_DATABASE_URL"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_registry_defaults_to_demo_agents_without_provider_config() -> None:
    registry = load_registry(load_settings({}))
    assert registry.mode == "demo"
    assert registry.default_agents == ["demo-1", "demo-2", "demo-3"]
    assert registry.unknown(["demo-1", "claude"]) == ["claude"]


def test_openai_env_registers_the_openai_agent_without_exposing_the_key() -> None:
    registry = load_registry(load_settings({"OPENAI_API_KEY": "sk-secret-123"}))
    spec = registry.get("openai")
    assert spec is not None
    assert spec.provider == "openai-compatible"
    assert spec.api_key_env == "OPENAI_API_KEY"
    assert "sk-secret-123" not in repr(registry)
    assert registry.mode == "providers"


def test_agents_file_declares_agents_and_refuses_duplicates(tmp_path: Path) -> None:
    good = tmp_path / "agents.toml"
    good.write_text(
        "default = ['local-a', 'local-b']\n"
        "[[agents]]\nname = 'local-a'\nprovider = 'openai-compatible'\nmodel = 'llama3'\n"
        "base_url = 'http://localhost:11434/v1'\n"
        "[[agents]]\nname = 'local-b'\nprovider = 'openai-compatible'\nmodel = 'qwen'\n"
        "base_url = 'http://localhost:11434/v1'\n"
    )
    registry = load_registry(load_settings({"ARAGORA_AGENTS_FILE": str(good)}))
    assert registry.default_agents == ["local-a", "local-b"]
    assert registry.mode == "providers"
    dup = tmp_path / "dup.toml"
    dup.write_text("[[agents]]\nname = 'x'\nprovider = 'demo'\n" * 2)
    with pytest.raises(SettingsError, match="duplicate agents"):
        load_registry(load_settings({"ARAGORA_AGENTS_FILE": str(dup)}))
    bad = tmp_path / "bad.toml"
    bad.write_text("[[agents]]\nname = 'x'\nprovider = 'skynet'\n")
    with pytest.raises(SettingsError, match="ARAGORA_AGENTS_FILE"):
        load_registry(load_settings({"ARAGORA_AGENTS_FILE": str(bad)}))
