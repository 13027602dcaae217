"""The price table: exact id, longest prefix, per-agent override, unpriced models."""

from __future__ import annotations

import pytest

from aragora.runtime.agents import AgentSpec
from aragora.runtime.pricing import PRICES, known_price, table_price, turn_cost


def test_exact_model_ids_use_the_table() -> None:
    # gpt-4o: $2.50 in, $10 out per million tokens.
    assert turn_cost(None, "gpt-4o", 1_000_000, 0) == 2.5
    assert turn_cost(None, "gpt-4o", 1000, 500) == pytest.approx(0.0025 + 0.005)
    assert turn_cost(None, "gpt-4o-mini", 1000, 1000) == pytest.approx(0.00075)
    assert turn_cost(None, "claude-sonnet-4-5", 2000, 1000) == pytest.approx(0.021)
    assert turn_cost(None, "openai/gpt-4o-mini", 1000, 1000) == pytest.approx(0.00075)
    assert turn_cost(None, "mistral-small-latest", 1_000_000, 1_000_000) == pytest.approx(0.8)


def test_dated_model_ids_match_the_longest_prefix() -> None:
    # gpt-4o-mini-2024-07-18 must not be priced as gpt-4o.
    assert table_price("gpt-4o-mini-2024-07-18") == PRICES["gpt-4o-mini"]
    assert table_price("gpt-4o-2024-08-06") == PRICES["gpt-4o"]
    assert table_price("claude-sonnet-4-5-20250929") == PRICES["claude-sonnet-4-5"]
    assert table_price("gemini-2.5-flash-001") == PRICES["gemini-2.5-flash"]


def test_demo_agents_are_free_but_priced() -> None:
    assert turn_cost(None, "demo-deterministic", 500, 500) == 0.0
    assert known_price(None, "demo-deterministic")


def test_unknown_models_cost_nothing_and_are_flagged() -> None:
    assert turn_cost(None, "my-local-llama", 1000, 1000) == 0.0
    assert not known_price(None, "my-local-llama")
    assert not known_price(None, "")


def test_the_agent_override_wins_field_by_field() -> None:
    both = AgentSpec(
        name="x", provider="demo", model="gpt-4o", input_usd_per_mtok=1.0, output_usd_per_mtok=2.0
    )
    assert turn_cost(both, "gpt-4o", 1_000_000, 1_000_000) == 3.0
    # Only the output price overridden: the input price comes from the table.
    half = AgentSpec(name="y", provider="demo", model="gpt-4o", output_usd_per_mtok=0.0)
    assert turn_cost(half, "gpt-4o", 1_000_000, 1_000_000) == 2.5
    # An override prices an otherwise unknown model.
    local = AgentSpec(name="z", provider="demo", model="llama", input_usd_per_mtok=0.5)
    assert known_price(local, "llama")
    assert turn_cost(local, "llama", 2_000_000, 1_000_000) == 1.0


def test_costs_are_rounded_to_a_millionth_and_never_negative() -> None:
    assert turn_cost(None, "gpt-4o-mini", 1, 1) == pytest.approx(7.5e-7, abs=1e-6)
    assert turn_cost(None, "gpt-4o-mini", 3, 0) == round(3 * 0.15 / 1e6, 6)
    assert turn_cost(None, "gpt-4o", -5, -5) == 0.0
