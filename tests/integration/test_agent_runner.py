"""Agent-runners as competing consumers on a real nats-server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest

from aragora.agent_runner.providers.demo import flaky_mode
from aragora.agent_runner.service import TurnRunner, result_id
from aragora.contracts import codec, subjects
from aragora.contracts.messages import AgentTurnFailed, AgentTurnSucceeded, RunTurn
from aragora.contracts.subjects import COMMANDS_STREAM
from aragora.runtime import bus
from aragora.runtime.agents import load_registry
from aragora.runtime.natsserver import EmbeddedNats
from tests.conftest import make_settings


def _turn(agent: str = "demo-1", timeout: float = 10.0) -> RunTurn:
    turn_id = str(uuid.uuid4())
    return RunTurn(
        event_id=turn_id,
        occurred_at=datetime.now(UTC),
        correlation_id="corr-runner",
        turn_id=turn_id,
        debate_id=str(uuid.uuid4()),
        round=1,
        phase="propose",
        agent=agent,
        stance="affirmative",
        topic="Should tests be fast?",
        timeout_seconds=timeout,
    )


async def _runner(
    conn: bus.Connection, tmp_path: Path, http: httpx.AsyncClient, latency_ms: int = 50
) -> tuple[TurnRunner, bus.Consumer, asyncio.Task[None]]:
    settings = make_settings(tmp_path, demo_latency_ms=latency_ms)
    runner = TurnRunner(load_registry(settings), settings, conn.js, http)
    consumer = bus.Consumer(
        conn,
        bus.ConsumerSpec(
            stream=COMMANDS_STREAM.name,
            durable="agent-runner",
            filter_subject=subjects.AGENT_COMMANDS,
            concurrency=4,
        ),
        runner.handle,
    )
    return runner, consumer, asyncio.create_task(consumer.run())


async def _results(conn: bus.Connection, count: int) -> list[AgentTurnSucceeded | AgentTurnFailed]:
    sub = await conn.js.subscribe("aragora.evt.agent.>", ordered_consumer=True)
    return [codec.decode_agent_event((await sub.next_msg(timeout=10)).data) for _ in range(count)]


@pytest.fixture
async def http() -> httpx.AsyncClient:
    async with httpx.AsyncClient() as client:
        yield client  # type: ignore[misc]


async def test_two_runners_share_the_turns_and_each_turn_is_answered_once(
    nats_server: EmbeddedNats, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    one = await bus.connect([nats_server.url], name="runner-1")
    two = await bus.connect([nats_server.url], name="runner-2")
    await bus.ensure_streams(one.js)
    runners = [await _runner(one, tmp_path, http), await _runner(two, tmp_path, http)]
    turns = [_turn(f"demo-{1 + i % 3}") for i in range(24)]
    for turn in turns:
        await bus.publish(one.js, subjects.RUN_TURN, codec.encode(turn), msg_id=turn.event_id)
    results = await _results(one, len(turns))

    assert sorted(r.turn_id for r in results) == sorted(t.turn_id for t in turns)
    assert all(isinstance(r, AgentTurnSucceeded) for r in results)
    assert all(r.event_id == result_id(r.turn_id) for r in results)
    shares = [runner.turns for runner, _, _ in runners]
    assert sum(shares) == len(turns)
    assert min(shares) > 0, f"work was not shared: {shares}"
    for _, consumer, task in runners:
        await consumer.stop()
        await asyncio.wait_for(task, 5)
    info = await one.js.stream_info(COMMANDS_STREAM.name)
    assert info.state.messages == 0  # work queue: every command acked and removed
    await one.close()
    await two.close()


async def test_unknown_agent_and_slow_agent_are_reported_as_failed_turns(
    nats_server: EmbeddedNats, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    conn = await bus.connect([nats_server.url], name="runner")
    await bus.ensure_streams(conn.js)
    _, consumer, task = await _runner(conn, tmp_path, http, latency_ms=2000)
    unknown, slow = _turn("nobody"), _turn("demo-2", timeout=0.2)
    for turn in (unknown, slow):
        await bus.publish(conn.js, subjects.RUN_TURN, codec.encode(turn), msg_id=turn.event_id)
    results = {r.turn_id: r for r in await _results(conn, 2)}

    failed_unknown = results[unknown.turn_id]
    assert isinstance(failed_unknown, AgentTurnFailed)
    assert failed_unknown.reason == "unknown_agent"
    failed_slow = results[slow.turn_id]
    assert isinstance(failed_slow, AgentTurnFailed)
    assert failed_slow.reason == "timeout"
    assert 150 <= failed_slow.latency_ms < 2000
    await consumer.stop()
    await asyncio.wait_for(task, 5)
    await conn.close()


def _command(agent: str, phase: str, **overrides: object) -> RunTurn:
    return msgspec.structs.replace(_turn(agent), phase=phase, **overrides)  # type: ignore[arg-type]


async def test_structured_fields_reach_the_result_event(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    settings = make_settings(tmp_path)
    runner = TurnRunner(load_registry(settings), settings, None, http)  # type: ignore[arg-type]
    critique = await runner.run_turn(
        _command("demo-contrarian", "critique", role="critic", targets=["demo-1", "demo-2"])
    )
    assert isinstance(critique, AgentTurnSucceeded)
    assert critique.structured and critique.provider == "demo"
    assert [c.target for c in critique.critiques] == ["demo-1", "demo-2"]
    assert all(c.severity >= 7 for c in critique.critiques)
    revise = await runner.run_turn(_command("demo-stubborn", "revise", round=2, ask_continue=True))
    assert isinstance(revise, AgentTurnSucceeded) and revise.continue_debate is False
    vote = await runner.run_turn(_command("demo-agreeable", "vote", candidates=["demo-3", "x"]))
    assert isinstance(vote, AgentTurnSucceeded)
    assert vote.vote is not None and vote.vote.choice == "demo-3"
    decoded = codec.decode_agent_event(codec.encode(critique))
    assert decoded == critique  # survives the wire


async def test_flaky_and_slow_demo_agents(tmp_path: Path, http: httpx.AsyncClient) -> None:
    settings = make_settings(tmp_path)
    runner = TurnRunner(load_registry(settings), settings, None, http)  # type: ignore[arg-type]
    commands = [
        _command("demo-flaky", phase, round=r, targets=["demo-1"], candidates=["demo-1"])
        for r in (1, 2, 3)
        for phase in ("propose", "critique", "revise")
    ]
    modes = [flaky_mode(settings.demo_seed, c) for c in commands]
    results = [await runner.run_turn(c) for c in commands]
    for mode, result in zip(modes, results, strict=True):
        if mode == "fail":
            assert isinstance(result, AgentTurnFailed)
            assert (result.reason, result.detail) == (
                "provider_error",
                "demo-flaky: simulated outage",
            )
        else:
            assert isinstance(result, AgentTurnSucceeded) and result.structured
            assert len(result.rejected_answers) == (1 if mode == "garble" else 0)
    assert "garble" in modes and modes.count("fail") == 3
    slow = await runner.run_turn(_command("demo-slow", "propose", timeout_seconds=0.2))
    assert isinstance(slow, AgentTurnFailed) and slow.reason == "timeout"
    assert 150 <= slow.latency_ms < 1000
