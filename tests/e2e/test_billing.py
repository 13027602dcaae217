"""End to end: turn cost from the agents file's prices, the per-debate budget, the usage
report and the per-agent metrics, with `aragora serve` as processes.

The demo provider reports token counts (about 4 characters a token) but the built-in demo
model is free, so these agents are demo agents with a price set in the agents file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_exactly_once
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e
PAID = ["paid-1", "paid-2", "paid-3"]


@pytest.fixture(scope="module")
def paid_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("billing")
    agents_file = tmp / "agents.toml"
    agents_file.write_text(
        "default = ['paid-1', 'paid-2', 'paid-3']\n"
        + "".join(
            f"[[agents]]\nname = '{name}'\nprovider = 'demo'\nmodel = 'demo-deterministic'\n"
            "input_usd_per_mtok = 3.0\noutput_usd_per_mtok = 15.0\n"
            for name in PAID
        )
    )
    running = Stack(Path(tmp), env={"ARAGORA_AGENTS_FILE": str(agents_file)}).start()
    yield running
    assert running.stop() == 0, running.log()


def test_a_debate_over_its_budget_ends_budget_exceeded_after_the_phase_in_flight(
    paid_stack: Stack,
) -> None:
    debate_id = paid_stack.post_debate(
        topic="Should we rewrite it in Rust?", agents=PAID, rounds=2, max_cost_usd=0.000001
    )
    view = paid_stack.wait_finished(debate_id)
    assert view["status"] == "budget_exceeded", view
    usage = view["usage"]
    assert usage["turns"] == 3 and usage["cost_usd"] > usage["max_cost_usd"] == 0.000001
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert view["error"] == f"spent ${usage['cost_usd']:.6f} of max_cost_usd $0.000001"
    # Nothing started after the first phase; every turn asked was answered and counted.
    assert {(t["round"], t["phase"]) for t in view["turns"]} == {(1, "propose")}
    assert all(t["status"] == "completed" and t["cost_usd"] > 0 for t in view["turns"])
    assert_exactly_once(paid_stack.events(debate_id))
    report = paid_stack.http.get(
        f"{paid_stack.url}/api/billing/usage", params={"debate_id": debate_id}, timeout=10
    ).json()
    assert report["totals"]["cost_usd"] == pytest.approx(usage["cost_usd"])
    assert report["by_debate"][0]["status"] == "budget_exceeded"


def test_usage_report_and_agent_metrics_after_a_debate(paid_stack: Stack) -> None:
    debate_id = paid_stack.post_debate(topic="Tabs or spaces?", agents=PAID, rounds=1)
    view = paid_stack.wait_finished(debate_id)
    assert view["status"] in ("consensus", "no_consensus"), view
    usage = view["usage"]
    assert usage["cost_usd"] > 0 and usage["budget_remaining_usd"] is None
    expected = round(
        (usage["prompt_tokens"] * 3.0 + usage["completion_tokens"] * 15.0) / 1_000_000, 6
    )
    assert usage["cost_usd"] == pytest.approx(expected, abs=1e-5)

    report = paid_stack.http.get(f"{paid_stack.url}/api/billing/usage", timeout=10).json()
    assert report["totals"]["cost_usd"] >= usage["cost_usd"]
    assert {a["agent"] for a in report["by_agent"]} == set(PAID)
    assert [(m["provider"], m["model"], m["priced"]) for m in report["by_model"]] == [
        ("demo", "demo-deterministic", True)
    ]
    assert report["unpriced_models"] == []
    assert [u["user"] for u in report["by_user"]] == ["service"]  # the owner token asked

    # The runbook's check: curl http://localhost:8080/api/metrics | grep agent_response
    text = paid_stack.http.get(f"{paid_stack.url}/api/metrics", timeout=10).text
    lines = [line for line in text.splitlines() if "agent_response" in line]
    count = next(
        line
        for line in lines
        if line.startswith('aragora_agent_response_seconds_count{agent="paid-1"')
    )
    assert float(count.rsplit(" ", 1)[1]) >= 4  # propose, critique, revise, vote at least
    assert 'aragora_agent_tokens_total{agent="paid-1",kind="prompt"' in text
    assert 'aragora_agent_cost_usd_total{agent="paid-1"' in text
    assert 'aragora_agent_circuit_breaker_state{agent="paid-1"} 0.0' in text


def test_ask_takes_a_budget_and_exits_1_when_it_is_exceeded(paid_stack: Stack) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "aragora.cli", "ask", "Is Rust worth it?"),
            *("--url", paid_stack.url, "--agents", ",".join(PAID), "--max-cost-usd", "0.000001"),
        ],
        env={**os.environ, "ARAGORA_DATA_DIR": str(paid_stack.data_dir)},  # the CLI finds the token
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "budget_exceeded" in result.stdout
    assert "max_cost_usd $0.000001" in result.stdout
