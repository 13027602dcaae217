"""Structured answers end to end: the OpenAI adapter against the fake provider over HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from functools import partial

import httpx
import pytest

from aragora.agent_runner.providers import OpenAICompatibleProvider
from aragora.contracts.messages import Critique, PeerMessage
from tests.factories import run_turn
from tests.plugins.fake_provider import FakeProviderProcess

PEERS = [
    PeerMessage(agent="claude", round=1, phase="propose", content="Tea."),
    PeerMessage(agent="gemini", round=1, phase="propose", content="Coffee."),
]


# A second-round critique by gpt on tea vs coffee, given PEERS' proposals, with a 10 s budget.
turn = partial(
    run_turn,
    round=2,
    phase="critique",
    agent="gpt",
    stance="neutral",
    topic="Is tea better than coffee?",
    context=PEERS,
    timeout_seconds=10.0,
)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def make(server: FakeProviderProcess, http: httpx.AsyncClient) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        http=http, base_url=server.base_url, model="fake-model", backoff_base_s=0.05
    )


async def test_critique_covers_the_targets(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient
) -> None:
    out = await make(fake_provider, http).run_turn(turn(targets=["gemini", "claude"]))
    assert out.structured and out.rejected_answers == []
    assert [c.target for c in out.critiques] == ["gemini", "claude"]
    assert out.critiques[0] == Critique(
        target="gemini",
        issues=["The fake provider finds gemini's argument thin."],
        suggestions=["Add evidence for the central claim."],
        severity=5.0,
    )
    assert out.content.startswith("gemini (severity 5/10): issues:")


async def test_revise_with_continue(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient
) -> None:
    provider = make(fake_provider, http)
    asked = await provider.run_turn(turn(phase="revise", ask_continue=True))
    assert asked.structured and asked.continue_debate is True
    assert asked.content.startswith('Fake revised answer about "Is tea better than coffee?"')
    plain = await provider.run_turn(turn(phase="revise"))
    assert plain.structured and plain.continue_debate is None


@pytest.mark.parametrize(("phase", "role"), [("vote", "proposer"), ("judge", "judge")])
async def test_ballots_choose_the_first_candidate(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient, phase: str, role: str
) -> None:
    command = turn(phase=phase, role=role, candidates=["gemini", "claude"])
    out = await make(fake_provider, http).run_turn(command)
    assert out.structured and out.vote is not None
    assert (out.vote.choice, out.vote.confidence, out.vote.conditions) == ("gemini", 0.8, "")


async def test_unparsable_once_is_reasked_and_succeeds(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient
) -> None:
    fake_provider.configure(fail_mode="unparsable", fail_count=1)
    out = await make(fake_provider, http).run_turn(turn(targets=["claude"]))
    assert out.structured and [c.target for c in out.critiques] == ["claude"]
    assert len(out.rejected_answers) == 1 and out.rejected_answers[0].startswith("Fake prose")
    stats = fake_provider.stats()
    assert (stats["requests"], stats["failures_injected"]) == (2, 1)


async def test_unparsable_twice_gives_up_unstructured(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient
) -> None:
    fake_provider.configure(fail_mode="unparsable", fail_count=5)
    command = turn(phase="vote", candidates=["claude", "gemini"])
    out = await make(fake_provider, http).run_turn(command)
    assert not out.structured and out.vote is None
    assert out.parse_error == "no JSON object found"
    assert out.content.startswith("Fake prose") and len(out.rejected_answers) == 1
    assert fake_provider.stats()["requests"] == 2  # one re-ask, never more


async def test_unparsable_leaves_plain_phases_alone(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient
) -> None:
    fake_provider.configure(fail_mode="unparsable", fail_count=1)
    out = await make(fake_provider, http).run_turn(turn(phase="propose", context=[]))
    assert out.structured and out.content.startswith('Fake answer about "Topic:')
    assert fake_provider.stats()["requests"] == 1


async def test_reask_respects_the_turn_deadline(
    fake_provider: FakeProviderProcess, http: httpx.AsyncClient
) -> None:
    fake_provider.configure(fail_mode="unparsable", fail_count=1, latency_ms=300)
    start = time.monotonic()
    out = await make(fake_provider, http).run_turn(turn(targets=["claude"], timeout_seconds=0.5))
    assert time.monotonic() - start < 0.5
    assert not out.structured and "deadline" in out.parse_error
    assert out.content.startswith("Fake prose") and out.rejected_answers == [out.content]
