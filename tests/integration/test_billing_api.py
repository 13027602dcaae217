"""Turn usage through the gateway: ``GET /api/billing/usage``, the debate view's ``usage``,
and the per-agent Prometheus metrics, on SQLite and PostgreSQL.

Debate events are decided by the orchestrator's pure rules with turn results that carry
tokens and cost (as the agent-runner reports them) and published like the outbox relay.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from aragora.contracts.messages import (
    AgentTurnFailed,
    AgentTurnSucceeded,
    DebateEvent,
    RunTurn,
    StartDebate,
)
from aragora.contracts.values import Protocol, Vote
from aragora.gateway import rebuild
from aragora.orchestrator import domain
from aragora.runtime.breakers import BreakerState, KVBreakerStore
from aragora.runtime.natsserver import EmbeddedNats
from aragora.runtime.settings import Settings
from tests.integration.gateway_harness import Gateway, eventually, metric, open_gateway

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
Answer = Callable[[RunTurn], AgentTurnSucceeded | AgentTurnFailed]


def events_of(
    answer: Answer,
    *,
    agents: list[str],
    topic: str,
    now: datetime = T0,
    max_cost_usd: float = 0.0,
) -> list[DebateEvent]:
    """A whole debate decided by the pure rules; ``answer`` plays every turn."""
    debate_id = str(uuid.uuid4())

    def ids() -> str:
        return str(uuid.uuid4())

    command = StartDebate(
        event_id=ids(),
        occurred_at=now,
        correlation_id="corr-billing",
        debate_id=debate_id,
        topic=topic,
        agents=agents,
        rounds=1,
        protocol=Protocol(rounds=1, early_stop=False, max_cost_usd=max_cost_usd),
    )
    ctx = domain.Ctx(now=now, ids=ids)
    decision = domain.decide_start(command, ctx)
    events, pending = list(decision.events), list(decision.commands)
    state = domain.replay(events)
    assert state is not None
    while pending and not state.is_over:
        step = domain.decide_turn_result(state, answer(pending.pop(0)), ctx)
        for event in step.events:
            state = domain.evolve(state, event)
        events += step.events
        pending += step.commands
    return events


def answering(
    model: str,
    cost: float,
    *,
    provider: str = "openai-compatible",
    served_by: dict[str, str] | None = None,
    fail: set[str] = frozenset(),  # type: ignore[assignment]
    now: datetime = T0,
) -> Answer:
    """Every turn: 100 prompt + 40 completion tokens for ``cost``; votes for the 1st agent."""

    def answer(cmd: RunTurn) -> AgentTurnSucceeded | AgentTurnFailed:
        env: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "occurred_at": now,
            "correlation_id": cmd.correlation_id,
            "debate_id": cmd.debate_id,
            "turn_id": cmd.turn_id,
            "agent": cmd.agent,
        }
        if cmd.agent in fail and cmd.phase == "critique":
            return AgentTurnFailed(**env, reason="quota", detail="credit balance too low")
        fallback = (served_by or {}).get(cmd.agent, "")
        choice = cmd.candidates[0] if cmd.phase == "vote" else None
        return AgentTurnSucceeded(
            **env,
            content=f"{cmd.phase} by {cmd.agent}",
            vote=Vote(choice=choice, confidence=0.9, reasoning="best") if choice else None,
            latency_ms=1500,
            provider=provider,
            model=model,
            prompt_tokens=100,
            completion_tokens=40,
            cost_usd=cost,
            served_by=fallback,
            fallback_reason="quota" if fallback else "",
        )

    return answer


async def project(gw: Gateway, events: list[DebateEvent]) -> dict[str, Any]:
    await gw.publish(events)
    return await gw.wait_for_seq(events[0].debate_id, events[-1].seq)


async def usage(gw: Gateway, query: str = "") -> dict[str, Any]:
    response = await gw.client.get(f"/api/billing/usage{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def gw(nats_server: EmbeddedNats, db_settings: Settings) -> Any:
    async with open_gateway(dataclasses.replace(db_settings, nats_url=nats_server.url)) as gw:
        yield gw


async def test_usage_totals_and_breakdowns_by_debate_agent_model_and_user(gw: Gateway) -> None:
    assert (await usage(gw))["totals"] == {
        "turns": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cost_usd": 0.0,
    }
    agents = ["demo-1", "demo-2", "demo-3"]
    # 3 x (propose, critique, revise, vote) + synthesis = 13 turns each.
    cheap = events_of(answering("gpt-4o-mini-2024-07-18", 0.0001), agents=agents, topic="Cheap")
    later = T0 + timedelta(days=2)
    dear = events_of(
        answering("claude-sonnet-4-5", 0.002, provider="anthropic", now=later),
        agents=agents,
        topic="Dear",
        now=later,
    )
    local = events_of(
        answering("my-llama", 0.0, served_by={"demo-2": "demo-5"}, fail={"demo-3"}),
        agents=agents,
        topic="Local",
    )
    # The dear debate was asked for by an account; the others carry no requester.
    dear[0] = msgspec.structs.replace(dear[0], requested_by="ada@example.org")
    for events in (cheap, dear, local):
        await project(gw, events)
    # A redelivery under new message ids reaches the projector and must add nothing.
    await gw.publish(cheap, fresh_msg_ids=True)

    body = await usage(gw)
    totals = body["totals"]
    assert totals["turns"] == 13 + 13 + 12  # demo-3's critique failed in "Local"
    assert totals["prompt_tokens"] == 38 * 100 and totals["completion_tokens"] == 38 * 40
    assert totals["cost_usd"] == pytest.approx(13 * 0.0001 + 13 * 0.002)
    assert body["period"] == {"since": None, "until": None}
    assert [d["topic"] for d in body["by_debate"]] == ["Dear", "Cheap", "Local"]
    first = body["by_debate"][0]
    assert first["debate_id"] == dear[0].debate_id and first["status"] == "consensus"
    assert first["turns"] == 13 and first["cost_usd"] == pytest.approx(0.026)
    by_agent = {a["agent"]: a for a in body["by_agent"]}
    assert set(by_agent) == set(agents)
    assert by_agent["demo-2"]["fallback_turns"] == 4  # propose, critique, revise, vote
    assert by_agent["demo-1"]["fallback_turns"] == 0
    by_model = {m["model"]: m for m in body["by_model"]}
    assert by_model["claude-sonnet-4-5"]["provider"] == "anthropic"
    assert by_model["gpt-4o-mini-2024-07-18"]["priced"] is True
    assert by_model["my-llama"]["priced"] is False
    assert body["unpriced_models"] == [
        {"provider": "openai-compatible", "model": "my-llama", "turns": 12}
    ]
    by_user = {u["user"]: u for u in body["by_user"]}
    assert set(by_user) == {"ada@example.org", "local"}
    assert by_user["ada@example.org"]["turns"] == 13
    assert by_user["ada@example.org"]["cost_usd"] == pytest.approx(0.026)
    assert by_user["local"]["turns"] == 13 + 12

    # Filters: one debate; a period (half-open, [since, until)).
    one = await usage(gw, f"?debate_id={cheap[0].debate_id}")
    assert one["totals"]["turns"] == 13 and one["debate_id"] == cheap[0].debate_id
    assert [d["topic"] for d in one["by_debate"]] == ["Cheap"]
    recent = await usage(gw, f"?since={(T0 + timedelta(days=1)).date().isoformat()}")
    assert [d["topic"] for d in recent["by_debate"]] == ["Dear"]
    assert recent["period"]["since"] == "2026-03-02T00:00:00+00:00"
    older = await usage(gw, "?until=2026-03-02T00:00:00Z&limit=1")
    assert older["totals"]["turns"] == 25 and len(older["by_debate"]) == 1
    for bad in ("?since=yesterday", "?since=2026-03-02&until=2026-03-01", "?limit=0"):
        response = await gw.client.get(f"/api/billing/usage{bad}")
        assert response.status_code == 400, (bad, response.text)


async def test_the_debate_view_shows_its_usage_against_its_budget(gw: Gateway) -> None:
    agents = ["demo-1", "demo-2", "demo-3"]
    events = events_of(
        answering("gpt-4o", 0.004), agents=agents, topic="Budgeted", max_cost_usd=0.01
    )
    view = await project(gw, events)
    assert view["status"] == "budget_exceeded"
    assert view["error"] == "spent $0.0120 of max_cost_usd $0.0100"
    assert view["usage"] == {
        "turns": 3,
        "prompt_tokens": 300,
        "completion_tokens": 120,
        "cost_usd": 0.012,
        "max_cost_usd": 0.01,
        "budget_remaining_usd": 0.0,
    }
    turn = view["turns"][0]
    assert (turn["provider"], turn["model"], turn["cost_usd"]) == (
        "openai-compatible",
        "gpt-4o",
        0.004,
    )
    assert (turn["prompt_tokens"], turn["completion_tokens"]) == (100, 40)
    listed = (await gw.client.get("/api/debates?status=budget_exceeded")).json()
    assert [d["id"] for d in listed["debates"]] == [events[0].debate_id]
    receipt = await gw.client.get(f"/api/debates/{events[0].debate_id}/receipt")
    assert receipt.status_code == 200, receipt.text
    body = receipt.json()["receipt"]
    assert (body["status"], body["verdict"]) == ("budget_exceeded", "FAIL")
    assert "budget_exceeded" in body["verdict_reason"]

    unlimited = events_of(answering("gpt-4o", 0.004), agents=agents, topic="Unlimited")
    view = await project(gw, unlimited)
    assert view["usage"]["max_cost_usd"] == 0.0 and view["usage"]["budget_remaining_usd"] is None
    assert view["usage"]["turns"] == 13


async def test_per_agent_metrics_follow_the_projected_turns(gw: Gateway) -> None:
    agent = f"metrics-{uuid.uuid4().hex[:6]}"  # fresh labels: the registry is per process
    agents = [agent, "demo-2", "demo-3"]
    labels = {"agent": agent, "provider": "openai-compatible", "model": "gpt-4o-mini"}
    before = metric("aragora_agent_failures_total", {"agent": "demo-3", "reason": "quota"})
    events = events_of(
        answering("gpt-4o-mini", 0.00025, served_by={agent: "demo-5"}, fail={"demo-3"}),
        agents=agents,
        topic="Metrics",
    )
    await project(gw, events)
    # propose, critique, revise, vote (synthesis is written by the top-rated: the first).
    turns = 5
    assert metric("aragora_agent_response_seconds_count", labels) == turns
    assert metric("aragora_agent_response_seconds_sum", labels) == pytest.approx(1.5 * turns)
    assert metric("aragora_agent_response_seconds_bucket", {**labels, "le": "2.5"}) == turns
    assert metric("aragora_agent_response_seconds_bucket", {**labels, "le": "1.0"}) == 0
    assert metric("aragora_agent_tokens_total", {**labels, "kind": "prompt"}) == 100 * turns
    assert metric("aragora_agent_tokens_total", {**labels, "kind": "completion"}) == 40 * turns
    assert metric("aragora_agent_cost_usd_total", labels) == pytest.approx(0.00025 * turns)
    fallback = {"agent": agent, "served_by": "demo-5", "reason": "quota"}
    assert metric("aragora_agent_fallbacks_total", fallback) == turns
    after = metric("aragora_agent_failures_total", {"agent": "demo-3", "reason": "quota"})
    assert after == before + 1

    # The breaker gauge is read from the KV on each scrape.
    store = KVBreakerStore(gw.nats.js, publish_events=False)
    await store.update("demo-2", lambda _: BreakerState(state="open", opened_at=1.0))
    await store.update("demo-3", lambda _: BreakerState(state="half_open"))
    text = (await gw.client.get("/api/metrics")).text
    assert 'aragora_agent_circuit_breaker_state{agent="demo-2"} 2.0' in text
    assert 'aragora_agent_circuit_breaker_state{agent="demo-3"} 1.0' in text
    assert 'aragora_agent_circuit_breaker_state{agent="demo-1"} 0.0' in text
    for name in (
        "aragora_agent_response_seconds_bucket",
        "aragora_agent_failures_total",
        "aragora_agent_tokens_total",
        "aragora_agent_cost_usd_total",
        "aragora_agent_fallbacks_total",
    ):
        assert name in text
    await store.update("demo-2", lambda _: BreakerState())
    await store.update("demo-3", lambda _: BreakerState())
    text = (await gw.client.get("/metrics")).text
    assert 'aragora_agent_circuit_breaker_state{agent="demo-2"} 0.0' in text


async def test_usage_metrics_are_not_counted_again_by_a_rebuild(gw: Gateway) -> None:
    agent = f"rebuild-{uuid.uuid4().hex[:6]}"
    labels = {"agent": agent, "provider": "openai-compatible", "model": "gpt-4o"}
    events = events_of(answering("gpt-4o", 0.001), agents=[agent, "demo-2"], topic="Again")
    await project(gw, events)
    counted = metric("aragora_agent_response_seconds_count", labels)
    assert counted > 0
    live = await usage(gw)
    await rebuild.rebuild_with(gw.deps.readmodel, gw.deps.bus.js)  # type: ignore[union-attr]
    assert await usage(gw) == live
    assert metric("aragora_agent_response_seconds_count", labels) == counted
    await eventually(lambda: usage(gw), lambda body: body == live)
