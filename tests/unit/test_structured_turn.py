"""run_structured: parse per phase, re-ask once, give up unstructured, respect the deadline."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from aragora.agent_runner.providers import ChatMessage, Completion, ProviderError, run_structured
from aragora.contracts.messages import RunTurn
from tests.factories import run_turn

BALLOT = '{"choice": "bob", "confidence": 0.9, "reasoning": "best"}'


def turn(**overrides: Any) -> RunTurn:
    """A second-round vote by alice between alice and bob, with a 5 s budget."""
    fields: dict[str, Any] = {
        "round": 2,
        "phase": "vote",
        "stance": "neutral",
        "topic": "Tabs or spaces?",
        "candidates": ["alice", "bob"],
        "timeout_seconds": 5.0,
    }
    return run_turn(**(fields | overrides))


class Script:
    """A provider ``complete`` that answers from a list and records what it was asked."""

    def __init__(self, *answers: str | Exception, delay: float = 0.0) -> None:
        self.answers = list(answers)
        self.delay = delay
        self.calls: list[list[ChatMessage]] = []
        self.deadlines: list[float] = []

    async def __call__(self, messages: list[ChatMessage], deadline: float) -> Completion:
        self.calls.append(messages)
        self.deadlines.append(deadline)
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return Completion(text=answer, model="m", prompt_tokens=10, completion_tokens=3)


async def test_first_answer_parses_one_call() -> None:
    script = Script(BALLOT)
    out = await run_structured(script, turn())
    assert len(script.calls) == 1
    assert out.structured and out.parse_error == "" and out.rejected_answers == []
    assert out.vote is not None and out.vote.choice == "bob"
    assert (out.model, out.prompt_tokens, out.completion_tokens) == ("m", 10, 3)


async def test_reask_once_then_success() -> None:
    script = Script("I pick bob, obviously.", BALLOT)
    out = await run_structured(script, turn())
    assert len(script.calls) == 2
    reask = script.calls[1]
    assert reask[:2] == script.calls[0]
    assert reask[2] == {"role": "assistant", "content": "I pick bob, obviously."}
    assert reask[3]["content"] == (
        "Your previous answer could not be parsed: no JSON object found. "
        "Reply with only the JSON object."
    )
    assert out.structured and out.vote is not None and out.vote.choice == "bob"
    assert out.rejected_answers == ["I pick bob, obviously."]
    assert (out.prompt_tokens, out.completion_tokens) == (20, 6)  # both calls counted


async def test_reask_twice_fails_unstructured() -> None:
    script = Script("prose one", '{"choice": "zed"}')
    out = await run_structured(script, turn())
    assert len(script.calls) == 2  # re-asked once, never twice
    assert not out.structured
    assert out.vote is None and out.critiques == [] and out.continue_debate is None
    assert out.content == '{"choice": "zed"}'  # the last raw text
    assert "not one of" in out.parse_error
    assert out.rejected_answers == ["prose one"]


async def test_critique_unparsable_twice_has_no_critiques() -> None:
    script = Script("bob is weak", "still prose")
    out = await run_structured(script, turn(phase="critique", targets=["bob"], candidates=[]))
    assert not out.structured and out.critiques == [] and out.content == "still prose"
    assert out.parse_error


async def test_revise_with_continue() -> None:
    script = Script('{"revised": "v2", "continue": false}')
    out = await run_structured(script, turn(phase="revise", ask_continue=True))
    assert (out.content, out.continue_debate, out.structured) == ("v2", False, True)


@pytest.mark.parametrize("phase", ["propose", "synthesis"])
async def test_plain_phases_are_never_reasked(phase: str) -> None:
    script = Script("Any prose { at all.")
    out = await run_structured(script, turn(phase=phase))
    assert out.structured and out.content == "Any prose { at all." and len(script.calls) == 1


async def test_non_retryable_error_is_not_reasked() -> None:
    script = Script(BALLOT)
    out = await run_structured(script, turn(candidates=[]))
    assert len(script.calls) == 1 and not out.structured and out.rejected_answers == []


async def test_provider_error_on_first_call_fails_the_turn() -> None:
    script = Script(ProviderError("provider_error", "down"))
    with pytest.raises(ProviderError):
        await run_structured(script, turn())


async def test_provider_error_on_reask_keeps_first_answer_unstructured() -> None:
    script = Script("prose", ProviderError("provider_error", "HTTP 500 server error"))
    out = await run_structured(script, turn())
    assert not out.structured and out.content == "prose"
    assert "re-ask failed: HTTP 500" in out.parse_error
    assert out.rejected_answers == ["prose"]


async def test_deadline_is_passed_to_every_call() -> None:
    script = Script("prose", BALLOT)
    deadline = asyncio.get_running_loop().time() + 3
    await run_structured(script, turn(), deadline=deadline)
    assert script.deadlines == [deadline, deadline]


async def test_no_reask_when_the_deadline_has_passed() -> None:
    script = Script("prose", BALLOT, delay=0.1)
    out = await run_structured(script, turn(timeout_seconds=0.1))
    assert len(script.calls) == 1
    assert not out.structured and "no time left to re-ask" in out.parse_error
    assert out.content == "prose"


async def test_reask_is_cut_off_before_the_turn_deadline() -> None:
    script = Script("prose", BALLOT, delay=0.3)
    start = time.monotonic()
    deadline = asyncio.get_running_loop().time() + 0.5
    # The caller's own bound (as in the service) must never be the one that fires.
    async with asyncio.timeout_at(deadline):
        out = await run_structured(script, turn(), deadline=deadline)
    assert time.monotonic() - start < 0.5
    assert len(script.calls) == 2
    assert not out.structured and "deadline" in out.parse_error and out.content == "prose"
    assert out.rejected_answers == ["prose"]
