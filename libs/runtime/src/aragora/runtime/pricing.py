"""What a turn cost: the built-in price table and per-agent price overrides.

Prices are USD per million tokens, (input, output). A model is matched by its exact id, then
by the longest table entry it starts with (providers answer with dated ids such as
``gpt-4o-2024-08-06``). An agent's ``input_usd_per_mtok`` / ``output_usd_per_mtok`` (agents
file) win over the table. A model with no price costs 0.0; :func:`known_price` tells usage
reports to flag it as unpriced rather than free.
"""

from __future__ import annotations

from aragora.runtime.agents import AgentSpec

# USD per million (prompt, completion) tokens, list prices as of 2025.
PRICES: dict[str, tuple[float, float]] = {
    "demo-deterministic": (0.0, 0.0),
    # OpenAI
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    # Anthropic
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-opus-4": (15.00, 75.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-haiku-4-5": (1.00, 5.00),
    # Google
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.0-flash": (0.10, 0.40),
    # Mistral
    "mistral-small-latest": (0.20, 0.60),
    "mistral-medium-latest": (0.40, 2.00),
    "mistral-large-latest": (2.00, 6.00),
    # OpenRouter ids (vendor/model)
    "openai/gpt-4o": (2.50, 10.00),
    "openai/gpt-4o-mini": (0.15, 0.60),
    "anthropic/claude-sonnet-4.5": (3.00, 15.00),
    "anthropic/claude-3.5-sonnet": (3.00, 15.00),
    "google/gemini-2.5-flash": (0.30, 2.50),
    "mistralai/mistral-small": (0.20, 0.60),
    "mistralai/mistral-large": (2.00, 6.00),
}
_BY_LENGTH = sorted(PRICES, key=len, reverse=True)


def table_price(model: str) -> tuple[float, float] | None:
    """The built-in (input, output) price of ``model``: exact id, else longest prefix."""
    if model in PRICES:
        return PRICES[model]
    for key in _BY_LENGTH:
        if model.startswith(key):
            return PRICES[key]
    return None


def price(spec: AgentSpec | None, model: str) -> tuple[float, float] | None:
    """USD per million (prompt, completion) tokens for a turn of ``spec`` answered by
    ``model``; the agent's override wins field by field. None: no price known."""
    table = table_price(model)
    override_in = spec.input_usd_per_mtok if spec is not None else None
    override_out = spec.output_usd_per_mtok if spec is not None else None
    if table is None and override_in is None and override_out is None:
        return None
    base_in, base_out = table if table is not None else (0.0, 0.0)
    return (
        override_in if override_in is not None else base_in,
        override_out if override_out is not None else base_out,
    )


def known_price(spec: AgentSpec | None, model: str) -> bool:
    """Whether ``model`` (for ``spec``) has a price; unpriced turns are reported as 0.0."""
    return price(spec, model) is not None


def turn_cost(
    spec: AgentSpec | None, model: str, prompt_tokens: int, completion_tokens: int
) -> float:
    """The USD cost of one turn, rounded to 1e-6; 0.0 for an unpriced model."""
    found = price(spec, model)
    if found is None:
        return 0.0
    per_in, per_out = found
    cost = (max(prompt_tokens, 0) * per_in + max(completion_tokens, 0) * per_out) / 1_000_000
    return round(cost, 6)
