"""The offline demo provider (stance-driven demo-1..5): determinism, stances, structured
answers, both vote outcomes. Behaviours: test_demo_behaviours.py."""

from __future__ import annotations

import re
import time
from collections import Counter
from functools import partial
from typing import Any

import httpx
import msgspec
import pytest

from aragora.agent_runner.providers import (
    DemoProvider,
    OpenAICompatibleProvider,
    build_provider,
)
from aragora.agent_runner.providers.demo import topic_is_agreeable
from aragora.contracts.messages import PeerMessage
from aragora.runtime.agents import AgentSpec
from aragora.runtime.settings import Settings
from tests.factories import run_turn

SPEC = AgentSpec(name="demo-1", provider="demo", model="demo-deterministic")
AGENTS = [("demo-1", "affirmative"), ("demo-2", "negative"), ("demo-3", "neutral")]


def provider(seed: int = 0, latency_ms: int = 0) -> DemoProvider:
    return DemoProvider(SPEC, Settings(demo_seed=seed, demo_latency_ms=latency_ms))


# A first-round proposal by demo-1 on the four-day week.
turn = partial(run_turn, agent="demo-1", topic="Should we adopt a four-day work week?")


def topics(agreeable: bool, seed: int = 0) -> list[str]:
    found = [t for i in range(60) if topic_is_agreeable(t := f"topic {i}", seed) == agreeable]
    assert found
    return found


def sentences(text: str) -> int:
    return len(re.findall(r"[.!?](?:\s|$)", text))


@pytest.mark.parametrize("phase", ["propose", "critique", "revise", "vote", "judge", "synthesis"])
async def test_deterministic_and_structured_for_same_inputs(phase: str) -> None:
    command = turn(
        phase=phase, candidates=["demo-1", "demo-2"], targets=["demo-2"], ask_continue=True
    )
    first = await provider().run_turn(command)
    again = await provider().run_turn(command)
    assert first == again
    assert first.structured and first.parse_error == "" and first.rejected_answers == []
    assert first.model == "demo-deterministic"
    assert first.prompt_tokens > 0 and first.completion_tokens > 0
    assert (first.vote is not None) == (phase in ("vote", "judge"))
    assert bool(first.critiques) == (phase == "critique")
    assert (first.continue_debate is not None) == (phase in ("revise", "vote", "judge"))


async def test_varies_with_seed_agent_and_round() -> None:
    base = await provider().run_turn(turn())
    outputs = [
        (await provider(seed=s).run_turn(turn(round=r, agent=a))).content
        for s in range(3)
        for r in (1, 2)
        for a in ("demo-1", "demo-2")
    ]
    assert base.content in outputs
    assert len(set(outputs)) > 3


@pytest.mark.parametrize(
    ("stance", "marker"),
    [("affirmative", r"in favour|yes"), ("negative", r"against|skeptical"), ("neutral", r"side")],
)
async def test_proposal_mentions_topic_and_reflects_stance(stance: str, marker: str) -> None:
    out = await provider().run_turn(turn(stance=stance))
    assert "four-day work week" in out.content
    assert re.search(marker, out.content)
    assert 2 <= sentences(out.content) <= 4
    assert out.vote is None


async def test_critique_covers_peers_not_self() -> None:
    context = [PeerMessage(agent=a, round=1, phase="propose", content="text") for a, _ in AGENTS]
    out = await provider().run_turn(turn(phase="critique", context=context))
    assert [c.target for c in out.critiques] == ["demo-2", "demo-3"]
    assert all(c.issues and c.suggestions and 0 <= c.severity <= 10 for c in out.critiques)
    assert out.content.splitlines()[0].startswith("demo-2 (severity ")
    assert "demo-1" not in out.content


async def test_critique_follows_targets() -> None:
    out = await provider().run_turn(turn(phase="critique", targets=["demo-3"], role="critic"))
    assert [c.target for c in out.critiques] == ["demo-3"]


@pytest.mark.parametrize(("stance", "low", "high"), [("negative", 5, 8), ("affirmative", 2, 6)])
async def test_critique_severity_by_stance(stance: str, low: int, high: int) -> None:
    for r in range(1, 6):
        out = await provider().run_turn(
            turn(phase="critique", stance=stance, round=r, targets=["demo-2", "demo-3"])
        )
        assert all(low <= c.severity <= high for c in out.critiques)


async def test_revision_moves_to_common_ground_later() -> None:
    context = [PeerMessage(agent="demo-2", round=1, phase="critique", content="weak")]
    early = await provider().run_turn(turn(phase="revise", round=1, context=context))
    late = await provider().run_turn(turn(phase="revise", round=2, context=context))
    assert "common ground" not in early.content
    assert "common ground with demo-2" in late.content
    assert 2 <= sentences(late.content) <= 4


async def votes(topic: str, seed: int = 0) -> dict[str, str]:
    candidates = [a for a, _ in AGENTS]
    result = {}
    for agent, stance in AGENTS:
        command = turn(phase="vote", agent=agent, stance=stance, topic=topic, candidates=candidates)
        out = await provider(seed).run_turn(command)
        assert out.vote is not None
        assert 0.55 <= out.vote.confidence <= 0.95
        assert out.content.startswith(f"Choice: {out.vote.choice} (confidence ")
        assert out.vote.reasoning in out.content and "\n" not in out.content
        result[agent] = out.vote.choice
    return result


async def test_agreeable_topic_reaches_majority() -> None:
    ballots = await votes(topics(agreeable=True)[0])
    assert ballots == {"demo-1": "demo-1", "demo-2": "demo-2", "demo-3": "demo-1"}
    assert Counter(ballots.values()).most_common(1)[0][1] / len(ballots) >= 0.6


async def test_disagreeable_topic_splits_the_vote() -> None:
    ballots = await votes(topics(agreeable=False)[0])
    assert ballots == {a: a for a, _ in AGENTS}


async def test_non_candidate_voters() -> None:
    topic = topics(agreeable=False)[0]
    out = await provider().run_turn(
        turn(phase="vote", agent="demo-9", topic=topic, candidates=["demo-1", "demo-2"])
    )
    assert out.vote is not None and out.vote.choice == "demo-2"
    out = await provider().run_turn(turn(phase="vote", candidates=[]))
    assert out.vote is None and out.content and not out.structured


async def test_neutral_support_for_another_is_conditional() -> None:
    topic = topics(agreeable=True)[0]
    command = turn(
        phase="vote", agent="demo-3", stance="neutral", topic=topic, candidates=["demo-1"]
    )
    out = await provider().run_turn(command)
    assert out.vote is not None and out.vote.choice == "demo-1" and out.vote.conditions
    assert "Conditions: " in out.content


@pytest.mark.parametrize("agreeable", [True, False])
async def test_continue_stops_from_round_3_on_agreeable_topics(agreeable: bool) -> None:
    topic = topics(agreeable)[0]
    answers = [
        (
            await provider().run_turn(turn(phase="revise", topic=topic, round=r, ask_continue=True))
        ).continue_debate
        for r in (1, 2, 3, 4)
    ]
    assert answers == ([True, True, False, False] if agreeable else [True] * 4)


async def test_judge_picks_like_its_vote() -> None:
    topic = topics(agreeable=True)[0]
    for agent, stance in AGENTS:
        common: dict[str, Any] = {
            "agent": agent,
            "stance": stance,
            "topic": topic,
            "candidates": ["demo-1", "demo-2"],
        }
        vote = await provider().run_turn(turn(phase="vote", **common))
        judge = await provider().run_turn(turn(phase="judge", role="judge", **common))
        assert vote.vote is not None and judge.vote is not None
        assert judge.vote.choice == vote.vote.choice


async def test_synthesis_builds_on_the_winner() -> None:
    context = [
        PeerMessage(agent="demo-1", round=2, phase="revise", content="Answer one."),
        PeerMessage(agent="demo-2", round=2, phase="revise", content="Answer two."),
        PeerMessage(agent="demo-1", round=2, phase="vote", content="Choice: demo-2 (x). y"),
        PeerMessage(agent="demo-2", round=2, phase="vote", content="Choice: demo-2 (x). y"),
    ]
    command = turn(
        phase="synthesis", role="synthesizer", context=context, candidates=["demo-1", "demo-2"]
    )
    out = await provider().run_turn(command)
    assert out.structured and out.vote is None
    assert "demo-2's answer" in out.content and "Answer two." in out.content
    assert "Open tensions: demo-1" in out.content
    judged = [
        *context,
        PeerMessage(agent="demo-3", round=2, phase="judge", content="Choice: demo-1 (c). r"),
    ]
    out = await provider().run_turn(msgspec.structs.replace(command, context=judged))
    assert "demo-1's answer" in out.content and "Answer one." in out.content
    alone = await provider().run_turn(turn(phase="synthesis", candidates=["demo-1"]))
    assert "demo-1's answer" in alone.content and "none were left unanswered" in alone.content


def test_about_two_thirds_of_topics_are_agreeable() -> None:
    share = sum(topic_is_agreeable(f"question {i}", 7) for i in range(600)) / 600
    assert 0.58 < share < 0.75
    assert topic_is_agreeable("same", 1) == topic_is_agreeable("same", 1)


async def test_latency_is_simulated() -> None:
    start = time.monotonic()
    await provider(latency_ms=50).run_turn(turn())
    assert time.monotonic() - start >= 0.045


async def test_build_provider_picks_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-secret-123456")
    async with httpx.AsyncClient() as http:
        demo = build_provider(SPEC, Settings(), http)
        assert isinstance(demo, DemoProvider) and demo.kind == "demo"
        spec = AgentSpec(
            name="o", provider="openai-compatible", base_url="http://x/v1", api_key_env="MY_KEY"
        )
        real = build_provider(spec, Settings(), http)
        assert isinstance(real, OpenAICompatibleProvider)
        assert real.kind == "openai-compatible"
        assert "sk-secret" not in repr(real) and "sk-secret" not in str(vars(real))
        await real.aclose()
        assert not http.is_closed
