"""Demo agents with a behaviour: agreeable, contrarian, stubborn, flaky, slow."""

from __future__ import annotations

import asyncio
import difflib
import re
from typing import Any

import pytest

from aragora.agent_runner.providers import DemoProvider, ProviderError
from aragora.agent_runner.providers.demo import SLOW_BASE_MS, flaky_mode
from aragora.contracts.messages import PeerMessage, RunTurn
from aragora.runtime.agents import AgentSpec, demo_agents, load_registry
from aragora.runtime.settings import Settings
from tests.factories import run_turn

BEHAVIOURS = ["agreeable", "contrarian", "stubborn", "flaky", "slow"]
PHASES = ["propose", "critique", "revise", "vote", "judge", "synthesis"]
CANDIDATES = ["demo-1", "demo-agreeable", "demo-contrarian", "demo-stubborn"]
TOPIC = "Should we adopt a four-day work week?"


def provider(behaviour: str, seed: int = 0, latency_ms: int = 0) -> DemoProvider:
    spec = AgentSpec(name=f"demo-{behaviour}", provider="demo", behaviour=behaviour)
    return DemoProvider(spec, Settings(demo_seed=seed, demo_latency_ms=latency_ms))


def turn(behaviour: str, **overrides: Any) -> RunTurn:
    """A first-round proposal by ``demo-{behaviour}``, with candidates, targets and a peer."""
    fields: dict[str, Any] = {
        "agent": f"demo-{behaviour}",
        "topic": TOPIC,
        "candidates": CANDIDATES,
        "targets": ["demo-1", "demo-2"],
        "context": [PeerMessage(agent="demo-1", round=1, phase="propose", content="Yes.")],
    }
    return run_turn(**(fields | overrides))


def jaccard(a: str, b: str) -> float:
    wa, wb = set(re.findall(r"\w+", a.lower())), set(re.findall(r"\w+", b.lower()))
    return len(wa & wb) / len(wa | wb)


def test_registry_has_the_behaviour_agents() -> None:
    specs = {a.name: a for a in demo_agents()}
    assert [f"demo-{i}" for i in range(1, 6)] == list(specs)[:5]
    assert all(specs[f"demo-{i}"].behaviour == "" for i in range(1, 6))
    for behaviour in BEHAVIOURS:
        spec = specs[f"demo-{behaviour}"]
        assert (spec.provider, spec.behaviour) == ("demo", behaviour)
    registry = load_registry(Settings())
    assert registry.get("demo-flaky") is not None and registry.mode == "demo"


@pytest.mark.parametrize("behaviour", ["agreeable", "contrarian", "stubborn", "flaky"])
async def test_deterministic_per_seed_topic_agent_round_phase(behaviour: str) -> None:
    for phase in PHASES:
        for r in (1, 2):
            command = turn(behaviour, phase=phase, round=r, ask_continue=True)
            outcomes: list[object] = []
            for _ in range(2):
                try:
                    outcomes.append(await provider(behaviour).run_turn(command))
                except ProviderError as exc:
                    outcomes.append(repr(exc))
            assert outcomes[0] == outcomes[1]


async def revisions(behaviour: str, stances: list[str]) -> list[str]:
    out = []
    for r, stance in enumerate(stances, start=1):
        command = turn(behaviour, phase="revise", round=r, stance=stance, ask_continue=r >= 2)
        out.append((await provider(behaviour).run_turn(command)).content)
    return out


async def test_agreeable_converges_votes_first_and_stops_from_round_2() -> None:
    texts = await revisions("agreeable", ["affirmative", "negative", "neutral", "affirmative"])
    assert difflib.SequenceMatcher(None, texts[0], texts[1]).ratio() > 0.9
    assert jaccard(texts[0], texts[1]) > 0.85
    assert texts[1] == texts[2] == texts[3]
    prop2 = await provider("agreeable").run_turn(turn("agreeable", round=2))
    assert prop2.content == texts[1]
    for r in (1, 2, 3):
        command = turn("agreeable", phase="revise", round=r, ask_continue=True)
        assert (await provider("agreeable").run_turn(command)).continue_debate is (r < 2)
        vote = await provider("agreeable").run_turn(turn("agreeable", phase="vote", round=r))
        assert vote.vote is not None and vote.vote.choice == CANDIDATES[0]
    critique = await provider("agreeable").run_turn(turn("agreeable", phase="critique"))
    assert all(1 <= c.severity <= 3 for c in critique.critiques)


async def test_stubborn_repeats_its_position_verbatim() -> None:
    texts = await revisions("stubborn", ["affirmative", "negative", "neutral", "negative"])
    proposals = [
        (await provider("stubborn").run_turn(turn("stubborn", round=r, stance=s))).content
        for r, s in ((1, "neutral"), (2, "affirmative"), (3, "negative"))
    ]
    assert len({*texts, *proposals}) == 1  # similarity 1.0 every round, whatever the stance
    for r in (2, 3):
        command = turn("stubborn", phase="revise", round=r, ask_continue=True)
        assert (await provider("stubborn").run_turn(command)).continue_debate is False
    vote = await provider("stubborn").run_turn(turn("stubborn", phase="vote"))
    assert vote.vote is not None and vote.vote.choice == "demo-stubborn"


async def test_contrarian_is_severe_votes_for_itself_and_continues() -> None:
    for r in range(1, 7):
        command = turn("contrarian", phase="critique", round=r, targets=["demo-1", "demo-2"])
        out = await provider("contrarian").run_turn(command)
        assert [c.target for c in out.critiques] == ["demo-1", "demo-2"]
        assert all(7 <= c.severity <= 10 for c in out.critiques)
        revise = await provider("contrarian").run_turn(
            turn("contrarian", phase="revise", round=r, ask_continue=True)
        )
        assert revise.continue_debate is True and "disagree" in revise.content
    vote = await provider("contrarian").run_turn(turn("contrarian", phase="vote"))
    assert vote.vote is not None and vote.vote.choice == "demo-contrarian"
    outsider = await provider("contrarian").run_turn(
        turn("contrarian", phase="judge", role="judge", candidates=["demo-1", "demo-2"])
    )
    assert outsider.vote is not None and outsider.vote.choice == "demo-2"  # not candidates[0]


async def test_flaky_fails_about_one_turn_in_three_and_recovers_when_reasked() -> None:
    outcomes: dict[str, int] = {"fail": 0, "garble": 0, "ok": 0}
    for r in range(1, 9):
        for phase in PHASES:
            command = turn(
                "flaky", phase=phase, round=r, role="judge" if phase == "judge" else "proposer"
            )
            mode = flaky_mode(0, command)
            outcomes[mode] += 1
            if mode == "fail":
                with pytest.raises(ProviderError) as info:
                    await provider("flaky").run_turn(command)
                assert (info.value.reason, info.value.detail) == (
                    "provider_error",
                    "demo-flaky: simulated outage",
                )
                continue
            out = await provider("flaky").run_turn(command)
            assert out.structured
            if mode == "garble":
                assert phase in ("critique", "revise", "vote", "judge")
                assert len(out.rejected_answers) == 1 and "{" not in out.rejected_answers[0]
            else:
                assert out.rejected_answers == []
    assert outcomes["fail"] * 3 == sum(outcomes.values())  # exactly one turn in three
    assert outcomes["garble"] > 0
    for r in range(1, 9):
        modes = [flaky_mode(0, turn("flaky", phase=p, round=r)) for p in PHASES[:3]]
        assert modes.count("fail") == 1  # a flaky agent still takes part in every round


async def test_slow_latency_is_20x_plus_1500ms_and_trips_short_timeouts() -> None:
    assert provider("slow").latency_s == SLOW_BASE_MS / 1000 == 1.5
    assert provider("slow", latency_ms=10).latency_s == pytest.approx(1.7)
    assert provider("agreeable", latency_ms=10).latency_s == pytest.approx(0.01)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(provider("slow").run_turn(turn("slow")), 0.05)
