"""Turn usage carried into TurnCompleted, and the per-debate budget (``max_cost_usd``)."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from litestar.exceptions import ValidationException

from aragora.contracts.messages import (
    AgentTurnSucceeded,
    DebateCompleted,
    DebateFailed,
    RunTurn,
    TurnCompleted,
)
from aragora.gateway.requests import CreateDebate, resolve_protocol
from aragora.orchestrator import domain
from aragora.runtime.settings import SettingsError, load_settings
from tests.unit.domain_driver import T0, Run, ctx, ok, start


def costly(cost: float) -> object:
    def answer(cmd: RunTurn) -> AgentTurnSucceeded:
        return ok(cmd, cost_usd=cost, prompt_tokens=100, completion_tokens=50)

    return answer


def test_turn_completed_carries_the_runner_s_usage_and_fallback() -> None:
    run = Run(start())
    cmd = run.pending.pop(0)
    run.feed(
        ok(
            cmd,
            provider="openai-compatible",
            model="gpt-4o-mini-2024-07-18",
            prompt_tokens=120,
            completion_tokens=80,
            latency_ms=900,
            cost_usd=0.000066,
            served_by="openrouter",
            fallback_reason="quota",
        )
    )
    done = run.events[-1]
    assert isinstance(done, TurnCompleted)
    assert (done.provider, done.model) == ("openai-compatible", "gpt-4o-mini-2024-07-18")
    assert (done.prompt_tokens, done.completion_tokens, done.latency_ms) == (120, 80, 900)
    assert done.cost_usd == 0.000066
    assert (done.served_by, done.fallback_reason) == ("openrouter", "quota")
    assert run.state.cost_usd == 0.000066


def test_the_running_total_is_folded_from_the_events() -> None:
    run = Run(start())
    run.play({"a": "a", "b": "a", "c": "a"}, answer=costly(0.001))
    completed = [e for e in run.events if isinstance(e, TurnCompleted)]
    assert run.state.cost_usd == pytest.approx(sum(e.cost_usd for e in completed))
    replayed = domain.replay(run.events)
    assert replayed is not None and replayed.cost_usd == run.state.cost_usd


def test_no_budget_means_no_limit() -> None:
    end = Run(start()).play({"a": "a", "b": "a", "c": "a"}, answer=costly(5.0))
    assert isinstance(end, DebateCompleted)


def test_a_debate_within_its_budget_ends_normally() -> None:
    # 1 round with 3 agents: propose, critique, revise (9 turns); vote and synthesis
    # answered without cost by the driver: 9 x 0.001 = 0.009 < 0.01.
    end = Run(start(max_cost_usd=0.01)).play({"a": "a", "b": "a", "c": "a"}, answer=costly(0.001))
    assert isinstance(end, DebateCompleted)


def test_over_budget_the_phase_in_flight_lands_and_nothing_new_starts() -> None:
    run = Run(start(rounds=2, max_cost_usd=0.01))
    proposals = list(run.pending)
    run.pending.clear()
    # The second proposal already takes the debate over budget: the third, in flight,
    # still lands and is recorded; then the debate ends instead of starting critique.
    for i, cmd in enumerate(proposals):
        decision = run.feed(ok(cmd, cost_usd=0.0061))
        if i < len(proposals) - 1:
            assert decision.commands == []
            assert not run.state.is_over
    end = run.state.terminal
    assert isinstance(end, DebateFailed)
    assert end.status == "budget_exceeded"
    assert end.reason == "spent $0.0183 of max_cost_usd $0.0100"
    assert run.pending == []
    assert run.phases() == [(1, "propose")]
    assert sum(isinstance(e, TurnCompleted) for e in run.events) == 3
    assert isinstance(run.events[-1], DebateFailed)


def test_a_late_result_after_the_budget_ended_the_debate_decides_nothing() -> None:
    run = Run(start(max_cost_usd=0.001))
    end = run.play(answer=costly(0.001))
    assert isinstance(end, DebateFailed) and end.status == "budget_exceeded"
    stray = RunTurn(
        event_id="x",
        occurred_at=T0,
        correlation_id="corr-1",
        turn_id="not-asked",
        debate_id=run.state.debate_id,
        round=1,
        phase="propose",
        agent="a",
        stance="affirmative",
        topic="t",
    )
    assert domain.decide_turn_result(run.state, ok(stray, cost_usd=1.0), run.ctx).events == []


def test_exactly_at_the_budget_is_not_over_it() -> None:
    run = Run(start(max_cost_usd=0.003))
    end = run.play({"a": "a", "b": "a", "c": "a"}, answer=costly(0.001))
    # The propose phase costs exactly 0.003; the critique phase takes it over.
    assert isinstance(end, DebateFailed) and end.status == "budget_exceeded"
    assert run.phases() == [(1, "propose"), (1, "critique")]


def test_a_turn_that_never_answers_is_failed_at_the_deadline_then_the_budget_ends_it() -> None:
    run = Run(start(max_cost_usd=0.001, turn_timeout_seconds=10.0))
    first, second, _silent = run.pending
    run.pending.clear()
    run.feed(ok(first, cost_usd=0.001))
    run.feed(ok(second, cost_usd=0.001))
    assert not run.state.is_over
    late = ctx(now=T0 + timedelta(seconds=60))
    run._take(domain.decide_deadlines(run.state, late))
    end = run.state.terminal
    assert isinstance(end, DebateFailed) and end.status == "budget_exceeded"
    assert end.reason == "spent $0.0020 of max_cost_usd $0.0010"
    assert [f.reason for f in end.failures] == ["no_result"]


def test_the_request_carries_the_budget_at_top_level_or_in_the_protocol() -> None:
    settings = load_settings({})

    def protocol_of(body: dict[str, object]) -> float:
        data = msgspec.convert({"topic": "t", **body}, CreateDebate)
        return resolve_protocol(data, settings).max_cost_usd

    assert protocol_of({}) == 0.0
    assert protocol_of({"max_cost_usd": 0.25}) == 0.25
    assert protocol_of({"protocol": {"max_cost_usd": 1.5}}) == 1.5
    assert protocol_of({"max_cost_usd": 2, "protocol": {"max_cost_usd": 2}}) == 2.0
    with pytest.raises(ValidationException, match="max_cost_usd"):
        protocol_of({"max_cost_usd": 1, "protocol": {"max_cost_usd": 2}})
    with pytest.raises(msgspec.ValidationError, match="max_cost_usd"):
        protocol_of({"max_cost_usd": -0.01})

    # The server's default budget applies when the request sets none; 0 lifts it.
    settings = load_settings({"ARAGORA_DEFAULT_MAX_COST_USD": "0.5"})
    assert protocol_of({}) == 0.5
    assert protocol_of({"max_cost_usd": 0}) == 0.0
    assert protocol_of({"protocol": {"max_cost_usd": 2}}) == 2.0
    with pytest.raises(SettingsError, match="ARAGORA_DEFAULT_MAX_COST_USD"):
        load_settings({"ARAGORA_DEFAULT_MAX_COST_USD": "-1"})


@pytest.mark.parametrize(
    ("spent", "limit", "reason"),
    [
        (0.0123, 0.01, "spent $0.0123 of max_cost_usd $0.0100"),
        (0.01004, 0.01, "spent $0.01004 of max_cost_usd $0.01000"),
        (0.000003, 0.000001, "spent $0.000003 of max_cost_usd $0.000001"),
    ],
)
def test_the_reason_shows_enough_decimals_to_tell_spent_from_budget(
    spent: float, limit: float, reason: str
) -> None:
    run = Run(start(max_cost_usd=limit))
    first, *rest = run.pending
    run.pending.clear()
    run.feed(ok(first, cost_usd=spent))
    for cmd in rest:
        run.feed(ok(cmd))
    end = run.state.terminal
    assert isinstance(end, DebateFailed) and end.reason == reason
