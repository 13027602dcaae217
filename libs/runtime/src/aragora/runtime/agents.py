"""The agent registry: which agent names exist and which provider serves each.

The gateway validates requested names against it; agent-runners build providers from it.
Sources, later ones overriding earlier: the built-in demo agents (`demo-1` … `demo-5` and
`demo-agreeable`, `demo-contrarian`, `demo-stubborn`, `demo-flaky`, `demo-slow`, always
present, offline), the built-in `openai` agent when OPENAI_BASE_URL or
OPENAI_API_KEY is set, then the TOML file named by ARAGORA_AGENTS_FILE.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import msgspec

from aragora.runtime.settings import Settings, SettingsError

ProviderKind = Literal["demo", "openai-compatible"]
DEMO_AGENT_COUNT = 5
DEMO_BEHAVIOURS = ("agreeable", "contrarian", "stubborn", "flaky", "slow")


class AgentSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One named agent. ``api_key_env`` names the env var holding its key (never the key)."""

    name: str
    provider: ProviderKind
    model: str = ""
    base_url: str = ""
    api_key_env: str = ""
    persona: str = ""
    behaviour: str = ""  # demo agents: agreeable, contrarian, stubborn, flaky, slow


class _AgentsFile(msgspec.Struct, kw_only=True):
    agents: list[AgentSpec] = []
    default: list[str] = []


class AgentRegistry(msgspec.Struct, frozen=True, kw_only=True):
    agents: dict[str, AgentSpec]
    default_agents: list[str]

    @property
    def mode(self) -> Literal["demo", "providers"]:
        """``demo`` when no real provider is configured: the API says so to users."""
        real = [a for a in self.agents.values() if a.provider != "demo"]
        return "providers" if real else "demo"

    def get(self, name: str) -> AgentSpec | None:
        return self.agents.get(name)

    def unknown(self, names: list[str]) -> list[str]:
        return [n for n in names if n not in self.agents]


def demo_agents() -> list[AgentSpec]:
    """The built-in offline agents: ``demo-1`` … ``demo-5`` argue the stance they are given;
    ``demo-<behaviour>`` (agreeable, contrarian, stubborn, flaky, slow) act out a behaviour."""
    stance_driven = [
        AgentSpec(name=f"demo-{i}", provider="demo", model="demo-deterministic")
        for i in range(1, DEMO_AGENT_COUNT + 1)
    ]
    behaving = [
        AgentSpec(name=f"demo-{b}", provider="demo", model="demo-deterministic", behaviour=b)
        for b in DEMO_BEHAVIOURS
    ]
    return stance_driven + behaving


def load_registry(settings: Settings) -> AgentRegistry:
    agents = {a.name: a for a in demo_agents()}
    if settings.openai_base_url or settings.openai_api_key:
        agents["openai"] = AgentSpec(
            name="openai",
            provider="openai-compatible",
            model=settings.openai_model,
            base_url=settings.openai_base_url or "https://api.openai.com/v1",
            api_key_env="OPENAI_API_KEY",
        )
    declared_default: list[str] = []
    if settings.agents_file:
        parsed = _read_agents_file(Path(settings.agents_file))
        agents.update({a.name: a for a in parsed.agents})
        declared_default = parsed.default
    real = [n for n, a in agents.items() if a.provider != "demo"]
    if declared_default:
        default = declared_default
    elif real:
        # With real providers configured, debates default to them (at least two agents).
        default = real if len(real) >= 2 else [*real, "demo-1"]
    else:
        default = ["demo-1", "demo-2", "demo-3"]
    missing = [n for n in default if n not in agents]
    if missing:
        raise SettingsError(f"default agents {missing} are not declared")
    return AgentRegistry(agents=agents, default_agents=default)


def _read_agents_file(path: Path) -> _AgentsFile:
    try:
        parsed = msgspec.convert(tomllib.loads(path.read_text()), _AgentsFile)
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise SettingsError(f"ARAGORA_AGENTS_FILE={path}: {exc}") from None
    names = [a.name for a in parsed.agents]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        # The reference system silently collapsed duplicates into one agent; refuse.
        raise SettingsError(f"ARAGORA_AGENTS_FILE={path}: duplicate agents {duplicates}")
    return parsed
