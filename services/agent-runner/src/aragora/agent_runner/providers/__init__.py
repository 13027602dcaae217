"""LLM provider adapters of the agent-runner, and the factory choosing one per agent."""

from __future__ import annotations

import os

import httpx

from aragora.agent_runner.providers.anthropic import AnthropicProvider
from aragora.agent_runner.providers.base import (
    ChatMessage,
    CompleteFn,
    Completion,
    LLMProvider,
    ProviderError,
    TurnOutput,
)
from aragora.agent_runner.providers.demo import DemoProvider
from aragora.agent_runner.providers.gemini import GeminiProvider
from aragora.agent_runner.providers.openai_compat import OpenAICompatibleProvider
from aragora.agent_runner.providers.structured import run_structured
from aragora.runtime.agents import (
    CLAUDE_MODEL,
    DEFAULT_ANTHROPIC_BASE_URL,
    DEFAULT_GEMINI_BASE_URL,
    DEFAULT_OPENAI_BASE_URL,
    GEMINI_MODEL,
    AgentSpec,
)
from aragora.runtime.settings import Settings

__all__ = [
    "AnthropicProvider",
    "ChatMessage",
    "CompleteFn",
    "Completion",
    "DemoProvider",
    "GeminiProvider",
    "LLMProvider",
    "OpenAICompatibleProvider",
    "ProviderError",
    "TurnOutput",
    "build_provider",
    "run_structured",
]

# Keys that may come from Settings (an override rather than env) when the env var is unset.
_SETTINGS_KEYS = {
    "OPENAI_API_KEY": "openai_api_key",
    "ANTHROPIC_API_KEY": "anthropic_api_key",
    "GEMINI_API_KEY": "gemini_api_key",
}


def _api_key(spec: AgentSpec, settings: Settings) -> str:
    """The agent's key, read now from the env var its spec names (never stored in specs)."""
    if not spec.api_key_env:
        return ""
    key = os.environ.get(spec.api_key_env, "")
    if not key and spec.api_key_env in _SETTINGS_KEYS:
        # Settings may carry the key when it was passed as an override rather than env.
        key = str(getattr(settings, _SETTINGS_KEYS[spec.api_key_env]))
    return key


def build_provider(spec: AgentSpec, settings: Settings, http: httpx.AsyncClient) -> LLMProvider:
    """The provider serving ``spec``; ``http`` is shared and stays owned by the caller."""
    if spec.provider == "demo":
        return DemoProvider(spec, settings)
    if spec.provider == "openai-compatible":
        return OpenAICompatibleProvider(
            http=http,
            base_url=spec.base_url or settings.openai_base_url or DEFAULT_OPENAI_BASE_URL,
            model=spec.model or settings.openai_model,
            api_key=_api_key(spec, settings),
            persona=spec.persona,
        )
    if spec.provider == "anthropic":
        return AnthropicProvider(
            http=http,
            base_url=spec.base_url or settings.anthropic_base_url or DEFAULT_ANTHROPIC_BASE_URL,
            model=spec.model or CLAUDE_MODEL,
            api_key=_api_key(spec, settings),
            persona=spec.persona,
        )
    if spec.provider == "gemini":
        return GeminiProvider(
            http=http,
            base_url=spec.base_url or settings.gemini_base_url or DEFAULT_GEMINI_BASE_URL,
            model=spec.model or GEMINI_MODEL,
            api_key=_api_key(spec, settings),
            persona=spec.persona,
        )
    raise ValueError(f"agent {spec.name!r}: unknown provider kind {spec.provider!r}")
