"""The agent registry: which agent names exist and which provider serves each.

The gateway validates requested names against it; agent-runners build providers from it.
Sources, later ones overriding earlier: the built-in demo agents (`demo-1` … `demo-5` and
`demo-agreeable`, `demo-contrarian`, `demo-stubborn`, `demo-flaky`, `demo-slow`, always
present, offline), the built-in `openai` agent (and its alias `gpt-4`, model gpt-4o) when
OPENAI_BASE_URL or OPENAI_API_KEY is set, `claude` when ANTHROPIC_API_KEY or
ANTHROPIC_BASE_URL is set, `gemini` when GEMINI_API_KEY or GEMINI_BASE_URL is set,
`openrouter` and `mistral` (OpenAI-compatible) when OPENROUTER_API_KEY / MISTRAL_API_KEY (or
their base URL) is set, then the TOML or YAML file named by ARAGORA_AGENTS_FILE.

Fallback: an agent's ``fallback`` list (or ARAGORA_FALLBACK_AGENTS, by default ``openrouter``
when registered) names the agents that answer its turn when its provider is out of quota or
credit or its circuit breaker is open; the turn event records who answered and why.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import msgspec

from aragora.runtime.settings import Settings, SettingsError

ProviderKind = Literal["demo", "openai-compatible", "anthropic", "gemini"]
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"
DEFAULT_GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_MISTRAL_BASE_URL = "https://api.mistral.ai/v1"
MISTRAL_MODEL = "mistral-large-latest"
CLAUDE_MODEL = "claude-sonnet-4-5"
GEMINI_MODEL = "gemini-2.5-flash"
GPT4_MODEL = "gpt-4o"
# Built-in second names of an agent already listed: never added to the default agents.
ALIASES = frozenset({"gpt-4"})
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
    # Agents tried in order when this one's provider is out of quota/credit or its circuit
    # breaker is open (empty: ARAGORA_FALLBACK_AGENTS).
    fallback: list[str] | None = None
    # USD per million prompt/completion tokens; None: the built-in price table's entry.
    input_usd_per_mtok: float | None = None
    output_usd_per_mtok: float | None = None


class _AgentsFile(msgspec.Struct, kw_only=True):
    agents: list[AgentSpec] = []
    default: list[str] = []


class AgentRegistry(msgspec.Struct, frozen=True, kw_only=True):
    agents: dict[str, AgentSpec]
    default_agents: list[str]
    default_fallback: list[str] = []

    @property
    def mode(self) -> Literal["demo", "providers"]:
        """``demo`` when no real provider is configured: the API says so to users."""
        real = [a for a in self.agents.values() if a.provider != "demo"]
        return "providers" if real else "demo"

    def get(self, name: str) -> AgentSpec | None:
        return self.agents.get(name)

    def unknown(self, names: list[str]) -> list[str]:
        return [n for n in names if n not in self.agents]

    def fallback_chain(self, name: str) -> list[str]:
        """Agents that answer for ``name`` when its provider is out of quota or its breaker
        is open, in order: its own ``fallback``, else the registry-wide default."""
        spec = self.agents.get(name)
        chain = spec.fallback if spec is not None and spec.fallback is not None else None
        if chain is None:
            chain = self.default_fallback
        return [n for n in chain if n != name and n in self.agents]


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


def provider_agents(settings: Settings) -> list[AgentSpec]:
    """The built-in real agents whose provider's key or base URL is configured."""
    found: list[AgentSpec] = []
    if settings.openai_base_url or settings.openai_api_key:
        openai_url = settings.openai_base_url or DEFAULT_OPENAI_BASE_URL
        for name, model in (("openai", settings.openai_model), ("gpt-4", GPT4_MODEL)):
            found.append(
                AgentSpec(
                    name=name,
                    provider="openai-compatible",
                    model=model,
                    base_url=openai_url,
                    api_key_env="OPENAI_API_KEY",
                )
            )
    if settings.anthropic_base_url or settings.anthropic_api_key:
        found.append(
            AgentSpec(
                name="claude",
                provider="anthropic",
                model=CLAUDE_MODEL,
                base_url=settings.anthropic_base_url or DEFAULT_ANTHROPIC_BASE_URL,
                api_key_env="ANTHROPIC_API_KEY",
            )
        )
    for name, key, base_url, default_url, model, key_env in (
        (
            "openrouter",
            settings.openrouter_api_key,
            settings.openrouter_base_url,
            DEFAULT_OPENROUTER_BASE_URL,
            settings.openrouter_model,
            "OPENROUTER_API_KEY",
        ),
        (
            "mistral",
            settings.mistral_api_key,
            settings.mistral_base_url,
            DEFAULT_MISTRAL_BASE_URL,
            MISTRAL_MODEL,
            "MISTRAL_API_KEY",
        ),
    ):
        if key or base_url:
            found.append(
                AgentSpec(
                    name=name,
                    provider="openai-compatible",
                    model=model,
                    base_url=base_url or default_url,
                    api_key_env=key_env,
                )
            )
    if settings.gemini_base_url or settings.gemini_api_key:
        found.append(
            AgentSpec(
                name="gemini",
                provider="gemini",
                model=GEMINI_MODEL,
                base_url=settings.gemini_base_url or DEFAULT_GEMINI_BASE_URL,
                api_key_env="GEMINI_API_KEY",
            )
        )
    return found


def load_registry(settings: Settings) -> AgentRegistry:
    agents = {a.name: a for a in demo_agents()}
    agents.update({a.name: a for a in provider_agents(settings)})
    declared_default: list[str] = []
    if settings.agents_file:
        parsed = _read_agents_file(Path(settings.agents_file))
        agents.update({a.name: a for a in parsed.agents})
        declared_default = parsed.default
    real = [n for n, a in agents.items() if a.provider != "demo" and n not in ALIASES]
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
    fallback = _default_fallback(settings, agents)
    for spec in agents.values():
        unknown = [n for n in spec.fallback or [] if n not in agents]
        if unknown:
            raise SettingsError(f"agent {spec.name!r}: fallback agents {unknown} are not declared")
    return AgentRegistry(agents=agents, default_agents=default, default_fallback=fallback)


def _default_fallback(settings: Settings, agents: dict[str, AgentSpec]) -> list[str]:
    raw = settings.fallback_agents.strip()
    if raw.lower() == "none":
        return []
    if not raw:
        return ["openrouter"] if "openrouter" in agents else []
    chain = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in chain if n not in agents]
    if unknown:
        raise SettingsError(f"ARAGORA_FALLBACK_AGENTS names unknown agents {unknown}")
    return chain


def _read_agents_file(path: Path) -> _AgentsFile:
    """TOML, or YAML when the name ends in ``.yaml``/``.yml``: the same fields either way."""
    import yaml  # only for an agents file: most processes never read one

    try:
        text = path.read_text()
        if path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
        parsed = msgspec.convert(data, _AgentsFile)
    except (OSError, tomllib.TOMLDecodeError, yaml.YAMLError, msgspec.ValidationError) as exc:
        raise SettingsError(f"ARAGORA_AGENTS_FILE={path}: {exc}") from None
    names = [a.name for a in parsed.agents]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        # The reference system silently collapsed duplicates into one agent; refuse.
        raise SettingsError(f"ARAGORA_AGENTS_FILE={path}: duplicate agents {duplicates}")
    return parsed
