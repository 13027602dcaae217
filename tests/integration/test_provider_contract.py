"""The provider contract: every HTTP adapter, through the agent-runner, against the fake server.

One table of cases runs for each API (OpenAI-compatible, Anthropic Messages, Gemini): success
with usage and cost, streaming, an HTTP timeout, a hang past the turn deadline, 500, 429 with
Retry-After, malformed JSON, and an exhausted quota routed to the fallback chain. Agents come
from a YAML agents file, as an operator would declare them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from aragora.agent_runner.service import TurnRunner
from aragora.contracts.messages import AgentTurnFailed, AgentTurnSucceeded
from aragora.runtime.agents import load_registry
from aragora.runtime.breakers import BreakerState, MemoryBreakerStore
from tests.conftest import make_settings
from tests.factories import run_turn
from tests.plugins.fake_provider import FakeProviderProcess, start_fake_provider

APIS = ["gpt", "claude", "gemini"]  # agents served by each adapter (see _agents_file)
PRICE_IN, PRICE_OUT = 3.0, 15.0  # USD per million tokens, declared in the agents file


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderProcess]:
    with start_fake_provider() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(fake: FakeProviderProcess) -> None:
    fake.reset()


def _agents_file(tmp_path: Path, fake: FakeProviderProcess) -> Path:
    path = tmp_path / "agents.yaml"
    prices = f"    input_usd_per_mtok: {PRICE_IN}\n    output_usd_per_mtok: {PRICE_OUT}\n"
    path.write_text(
        "agents:\n"
        f"  - name: gpt\n    provider: openai-compatible\n    model: fake-gpt\n"
        f"    base_url: {fake.base_url}\n    fallback: [backup]\n{prices}"
        f"  - name: claude\n    provider: anthropic\n    model: claude-test\n"
        f"    base_url: {fake.root_url}\n    fallback: [backup]\n{prices}"
        f"  - name: gemini\n    provider: gemini\n    model: gemini-test\n"
        f"    base_url: {fake.root_url}\n    fallback: [backup]\n{prices}"
        f"  - name: backup\n    provider: openai-compatible\n    model: backup-model\n"
        f"    base_url: {fake.base_url}\n    fallback: []\n"
        f"  - name: lonely\n    provider: openai-compatible\n    model: fake-gpt\n"
        f"    base_url: {fake.base_url}\n    fallback: []\n"
    )
    return path


@pytest.fixture
async def runner(tmp_path: Path, fake: FakeProviderProcess) -> AsyncIterator[TurnRunner]:
    settings = make_settings(tmp_path, agents_file=str(_agents_file(tmp_path, fake)))
    # The client's own timeout stands for a provider that accepts and never answers.
    async with httpx.AsyncClient(timeout=1.0) as http:
        turn_runner = TurnRunner(
            load_registry(settings),
            settings,
            None,  # type: ignore[arg-type]  # run_turn needs no bus
            http,
            breakers=MemoryBreakerStore(),
        )
        yield turn_runner
        await turn_runner.aclose()


def _fast_backoff(runner: TurnRunner, agent: str) -> None:
    provider = runner._provider(agent)
    provider._backoff_base_s = 0.02  # type: ignore[union-attr]


async def _turn(
    runner: TurnRunner, agent: str, timeout: float = 20.0, phase: str = "propose"
) -> AgentTurnSucceeded | AgentTurnFailed:
    _fast_backoff(runner, agent)
    command = run_turn(
        agent=agent,
        phase=phase,
        candidates=APIS,
        timeout_seconds=timeout,
        turn_id=str(uuid.uuid4()),
    )
    return await runner.run_turn(command)


@pytest.mark.parametrize("agent", APIS)
async def test_success_reports_text_usage_and_cost(
    runner: TurnRunner, fake: FakeProviderProcess, agent: str
) -> None:
    result = await _turn(runner, agent)
    assert isinstance(result, AgentTurnSucceeded), result
    assert result.content and result.structured
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    expected = (result.prompt_tokens * PRICE_IN + result.completion_tokens * PRICE_OUT) / 1e6
    assert result.cost_usd == pytest.approx(expected, abs=1e-6)
    assert (result.served_by, result.fallback_reason) == ("", "")
    assert fake.stats()["requests"] == 1


@pytest.mark.parametrize("agent", APIS)
async def test_streaming_gives_the_answer_in_pieces(
    runner: TurnRunner, fake: FakeProviderProcess, agent: str
) -> None:
    provider = runner._provider(agent)
    assert provider is not None
    pieces: list[str] = []

    async def on_delta(piece: str) -> None:
        pieces.append(piece)

    out = await provider.run_turn(run_turn(agent=agent), on_delta=on_delta)
    assert len(pieces) >= 2 and "".join(pieces).strip() == out.content
    assert out.prompt_tokens > 0 and out.completion_tokens > 0


@pytest.mark.parametrize("agent", APIS)
async def test_http_timeout_is_retried_then_reported_as_timeout(
    runner: TurnRunner, fake: FakeProviderProcess, agent: str
) -> None:
    fake.configure(fail_mode="timeout", hang_seconds=30)
    result = await _turn(runner, agent)
    assert isinstance(result, AgentTurnFailed)
    assert result.reason == "timeout" and "HTTP timeout" in result.detail
    assert fake.stats()["requests"] == 3  # one call, two retries, each cut by the client


@pytest.mark.parametrize("agent", APIS)
async def test_a_hang_past_the_turn_deadline_fails_the_turn_on_time(
    runner: TurnRunner, fake: FakeProviderProcess, agent: str
) -> None:
    runner.http.timeout = httpx.Timeout(30.0)
    fake.configure(fail_mode="timeout", hang_seconds=30)
    started = time.monotonic()
    result = await _turn(runner, agent, timeout=0.8)
    assert isinstance(result, AgentTurnFailed)
    assert result.reason == "timeout" and "within 0.8s" in result.detail
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("agent", APIS)
async def test_500_is_retried_then_succeeds(
    runner: TurnRunner, fake: FakeProviderProcess, agent: str
) -> None:
    fake.configure(fail_mode="500", fail_count=2)
    result = await _turn(runner, agent)
    assert isinstance(result, AgentTurnSucceeded)
    assert (fake.stats()["requests"], fake.stats()["failures_injected"]) == (3, 2)


@pytest.mark.parametrize("agent", APIS)
async def test_429_waits_for_retry_after(
    runner: TurnRunner, fake: FakeProviderProcess, agent: str
) -> None:
    fake.configure(fail_mode="429", fail_count=1, retry_after=0.5)
    started = time.monotonic()
    result = await _turn(runner, agent)
    assert isinstance(result, AgentTurnSucceeded)
    assert time.monotonic() - started >= 0.5
    assert fake.stats()["requests"] == 2


@pytest.mark.parametrize("agent", APIS)
async def test_malformed_json_fails_without_retry(
    runner: TurnRunner, fake: FakeProviderProcess, agent: str
) -> None:
    fake.configure(fail_mode="malformed", fail_count=1)
    result = await _turn(runner, agent)
    assert isinstance(result, AgentTurnFailed)
    assert result.reason == "provider_error" and "malformed" in result.detail
    assert fake.stats()["requests"] == 1


@pytest.mark.parametrize("agent", APIS)
async def test_quota_error_routes_the_turn_to_the_fallback(
    runner: TurnRunner, fake: FakeProviderProcess, agent: str
) -> None:
    fake.configure(fail_mode="quota", fail_count=1)
    result = await _turn(runner, agent, phase="vote")
    assert isinstance(result, AgentTurnSucceeded), result
    assert result.agent == agent and result.served_by == "backup"
    assert result.fallback_reason.startswith(f"{agent} is out of quota")
    assert result.model == "backup-model" and result.vote is not None
    assert fake.stats()["requests"] == 2  # the quota answer is not retried


async def test_quota_error_without_a_fallback_is_a_quota_failure(
    runner: TurnRunner, fake: FakeProviderProcess
) -> None:
    fake.configure(fail_mode="quota")
    result = await _turn(runner, "lonely")
    assert isinstance(result, AgentTurnFailed)
    assert result.reason == "quota" and "exceeded your current quota" in result.detail
    assert fake.stats()["requests"] == 1


async def test_an_exhausted_chain_names_every_failure(
    runner: TurnRunner, fake: FakeProviderProcess
) -> None:
    fake.configure(fail_mode="quota")  # the backup is out of quota too
    result = await _turn(runner, "claude")
    assert isinstance(result, AgentTurnFailed) and result.reason == "quota"
    assert "credit balance is too low" in result.detail
    assert "fallback failed too (backup: quota:" in result.detail


async def test_an_open_breaker_routes_to_the_fallback_without_calling_the_provider(
    runner: TurnRunner, fake: FakeProviderProcess
) -> None:
    now = time.time()

    def opened(_: BreakerState) -> BreakerState:
        return BreakerState(
            state="open", consecutive_failures=3, opened_at=now, open_until=now + 60
        )

    await runner.breakers.update("claude", opened, reason="test")
    result = await _turn(runner, "claude")
    assert isinstance(result, AgentTurnSucceeded)
    assert result.served_by == "backup"
    assert result.fallback_reason.startswith("circuit breaker open for claude until")
    assert fake.stats()["by_path"] == {"/v1/chat/completions": 1}  # only the backup was called


@pytest.mark.parametrize("agent", APIS)
async def test_a_vote_is_parsed_into_a_ballot(
    runner: TurnRunner, fake: FakeProviderProcess, agent: str
) -> None:
    result = await _turn(runner, agent, phase="vote")
    assert isinstance(result, AgentTurnSucceeded) and result.vote is not None
    assert (result.vote.choice, result.vote.confidence) == (APIS[0], 0.8)
    assert result.structured


@pytest.mark.parametrize("agent", APIS)
async def test_an_unparsable_answer_is_reasked_once(
    runner: TurnRunner, fake: FakeProviderProcess, agent: str
) -> None:
    fake.configure(fail_mode="unparsable", fail_count=1)
    result = await _turn(runner, agent, phase="vote")
    assert isinstance(result, AgentTurnSucceeded) and result.vote is not None
    assert result.structured and len(result.rejected_answers) == 1
    assert fake.stats()["requests"] == 2


@pytest.mark.parametrize("agent", APIS)
async def test_server_errors_give_up_after_three_attempts(
    runner: TurnRunner, fake: FakeProviderProcess, agent: str
) -> None:
    fake.configure(fail_mode="overloaded")  # Anthropic 529, the others 503
    result = await _turn(runner, agent)
    assert isinstance(result, AgentTurnFailed) and result.reason == "provider_error"
    assert "529" in result.detail if agent == "claude" else "503" in result.detail
    assert fake.stats()["requests"] == 3
