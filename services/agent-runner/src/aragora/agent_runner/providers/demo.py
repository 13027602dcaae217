"""The offline demo provider: deterministic, plausible debate answers with no network.

Everything a turn produces is a function of (demo seed, topic, agent, round, phase) and the
names in the command, so a demo debate replays identically. The demo answers in the same
formats a model is asked for (JSON on critique, revise, vote and judge turns), and those
answers go through the same parser and re-ask path as a real provider's.

Agents without a ``behaviour`` (``demo-1`` … ``demo-5``) argue their stance; whether they
converge depends on the topic (:func:`topic_is_agreeable`). Behaviours:

* ``agreeable``: mild critiques; revisions converge (identical from round 2, close to round
  1); votes for ``candidates[0]``; STOP from round 2.
* ``contrarian``: severe critiques (7-10); stays against; votes for itself (or anyone but
  ``candidates[0]``); always CONTINUE.
* ``stubborn``: repeats its original position verbatim in every proposal and revision;
  votes for itself; always STOP.
* ``flaky``: one turn in three fails with ``ProviderError`` (see :func:`flaky_mode`);
  another of the three, when it asks for JSON, first gets prose, then a proper answer
  when re-asked.
* ``slow``: takes ``20 x demo_latency_ms + 1500`` ms per call (trips short turn timeouts).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from typing import Any, Literal

from aragora.agent_runner.providers import demo_text as text
from aragora.agent_runner.providers.base import (
    ChatMessage,
    Completion,
    DeltaFn,
    ProviderError,
    TurnOutput,
)
from aragora.agent_runner.providers.demo_text import topic_is_agreeable
from aragora.agent_runner.providers.prompts import critique_targets, one_line
from aragora.agent_runner.providers.structured import run_structured, turn_deadline
from aragora.contracts.messages import RunTurn
from aragora.runtime.agents import AgentSpec
from aragora.runtime.settings import Settings

__all__ = ["DEMO_MODEL", "DemoProvider", "flaky_mode", "topic_is_agreeable"]

DEMO_MODEL = "demo-deterministic"
SLOW_BASE_MS = 1500
SLOW_FACTOR = 20
STREAM_PIECES = 4  # a streamed demo answer arrives in about this many deltas
FlakyMode = Literal["fail", "garble", "ok"]
_PHASE_ORDER = ("propose", "critique", "revise", "vote", "judge", "synthesis")
_JSON_PHASES = ("critique", "revise", "vote", "judge")
_SEVERITY: dict[str, tuple[int, int]] = {
    "agreeable": (1, 3),
    "contrarian": (7, 10),
    "stubborn": (4, 7),
}


def flaky_mode(seed: int, command: RunTurn) -> FlakyMode:
    """What the flaky agent does on this turn: fail, garble its first answer, or neither.

    A fixed cycle of three over the turns (offset per seed, topic and agent; phases in
    debate order, 7 steps per round so that modes rotate between phases across rounds):
    exactly one turn in three fails, and in each round of propose, critique and revise
    exactly one fails.
    """
    offset = int.from_bytes(text.digest("flaky", seed, command.topic, command.agent)[:4], "big")
    pick = (offset + 7 * command.round + _PHASE_ORDER.index(command.phase)) % 3
    if pick == 0:
        return "fail"
    return "garble" if pick == 1 and command.phase in _JSON_PHASES else "ok"


class DemoProvider:
    """Deterministic offline agent; sleeps ``settings.demo_latency_ms`` per provider call."""

    kind: str = "demo"

    def __init__(self, spec: AgentSpec, settings: Settings) -> None:
        self._model = spec.model or DEMO_MODEL
        self._seed = settings.demo_seed
        self._persona = spec.persona
        self.behaviour = spec.behaviour
        latency_ms = max(0, settings.demo_latency_ms)
        if self.behaviour == "slow":
            latency_ms = SLOW_FACTOR * latency_ms + SLOW_BASE_MS
        self.latency_s = latency_ms / 1000

    def __repr__(self) -> str:
        return (
            f"DemoProvider(model={self._model!r}, seed={self._seed}, behaviour={self.behaviour!r})"
        )

    async def aclose(self) -> None:
        """Nothing to release."""

    async def run_turn(
        self,
        command: RunTurn,
        *,
        deadline: float | None = None,
        on_delta: DeltaFn | None = None,
    ) -> TurnOutput:
        """This agent's answer for the command, parsed like any provider's."""

        async def complete(messages: list[ChatMessage], _deadline: float) -> Completion:
            return await self.complete(command, messages)

        async def first(messages: list[ChatMessage], _deadline: float) -> Completion:
            return await self.complete(command, messages, on_delta=on_delta)

        return await run_structured(
            complete,
            command,
            persona=self._persona,
            deadline=turn_deadline(command, deadline),
            default_model=self._model,
            first_complete=first if on_delta is not None else None,
        )

    async def complete(
        self, command: RunTurn, messages: list[ChatMessage], *, on_delta: DeltaFn | None = None
    ) -> Completion:
        """One simulated call: the raw answer text (JSON where the phase asks for it).

        With ``on_delta`` the answer is also streamed in about :data:`STREAM_PIECES`
        pieces, the latency spread between them.
        """
        delay = self.latency_s / STREAM_PIECES if on_delta is not None else self.latency_s
        if delay > 0:
            await asyncio.sleep(delay)
        reask = len(messages) > 2
        mode = flaky_mode(self._seed, command) if self.behaviour == "flaky" else "ok"
        if mode == "fail" and not reask:
            raise ProviderError("provider_error", "demo-flaky: simulated outage", retryable=True)
        if mode == "garble" and not reask:
            answer = (
                f'Let me think out loud about "{one_line(command.topic, 120)}" instead of '
                "following the requested format."
            )
        else:
            answer = self.answer(command)
        if on_delta is not None:
            await _stream(answer, on_delta, delay)
        prompt_chars = sum(len(m["content"]) for m in messages)
        return Completion(
            text=answer,
            model=self._model,
            prompt_tokens=max(1, prompt_chars // 4),
            completion_tokens=max(1, len(answer) // 4),
        )

    def answer(self, command: RunTurn) -> str:
        """The well-formed answer for the command's phase."""
        rng = text.rng_for(self._seed, command.topic, command.agent, command.round, command.phase)
        topic = one_line(command.topic, 120)
        phase = command.phase
        if phase == "propose":
            return self._propose(command, topic, rng)
        if phase == "synthesis":
            return text.synthesis(command, topic)
        if phase == "critique":
            return json.dumps({"critiques": self._critiques(command, rng)})
        if phase == "revise":
            return json.dumps(
                self._with_continue({"revised": self._revise(command, topic, rng)}, command)
            )
        return json.dumps(self._with_continue(self._ballot(command, rng), command))

    # --- phases -------------------------------------------------------------------------------

    def _propose(self, command: RunTurn, topic: str, rng: random.Random) -> str:
        if self.behaviour == "stubborn":
            return text.fixed_position(self._seed, topic, command.agent)
        if self.behaviour == "agreeable" and command.round > 1:
            return text.converging_revision(self._seed, topic, command.agent, command.round)
        return text.proposal(command.stance, topic, rng)

    def _critiques(self, command: RunTurn, rng: random.Random) -> list[dict[str, Any]]:
        low, high = _SEVERITY.get(
            self.behaviour, (5, 8) if command.stance == "negative" else (2, 6)
        )
        critiques = []
        for target in critique_targets(command):
            issues = rng.sample(text.WEAKNESSES, k=rng.randint(1, 2))
            critiques.append(
                {
                    "target": target,
                    "issues": [f"{target}'s proposal {issue}" for issue in issues],
                    "suggestions": [rng.choice(text.SUGGESTIONS)],
                    "severity": rng.randint(low, high),
                }
            )
        return critiques

    def _revise(self, command: RunTurn, topic: str, rng: random.Random) -> str:
        if self.behaviour == "stubborn":
            return text.fixed_position(self._seed, topic, command.agent)
        if self.behaviour == "agreeable":
            return text.converging_revision(self._seed, topic, command.agent, command.round)
        if self.behaviour == "contrarian":
            return text.contrarian_revision(topic, rng)
        return text.revision(command, topic, rng)

    def _choice(self, command: RunTurn) -> str:
        candidates = command.candidates
        own = command.agent in candidates
        if self.behaviour == "agreeable":
            return candidates[0]
        if self.behaviour == "stubborn":
            return command.agent if own else candidates[0]
        if self.behaviour == "contrarian":
            return command.agent if own else (candidates[1:] or candidates)[-1]
        if topic_is_agreeable(command.topic, self._seed):
            # Negative voters hold out for themselves; the rest converge on one answer.
            return command.agent if command.stance == "negative" and own else candidates[0]
        return command.agent if own else candidates[-1]

    def _ballot(self, command: RunTurn, rng: random.Random) -> dict[str, Any]:
        confidence = round(0.55 + 0.4 * rng.random(), 2)
        if not command.candidates:
            return {"choice": "", "confidence": confidence, "reasoning": "No candidates."}
        choice = self._choice(command)
        judging = command.phase == "judge"
        if choice == command.agent:
            reasoning = "I stand by my own final answer: it best survives the critiques."
        elif judging:
            reasoning = f"As judge, I find {choice}'s final answer the best supported."
        else:
            reasoning = f"{choice}'s final answer is the most convincing and best supported."
        conditional = not self.behaviour and command.stance == "neutral" and choice != command.agent
        conditions = "provided the rollout is staged with checkpoints" if conditional else ""
        return {
            "choice": choice,
            "confidence": confidence,
            "reasoning": reasoning,
            "conditions": conditions,
        }

    def _continues(self, command: RunTurn) -> bool:
        """CONTINUE (True) or STOP (False) for this agent at this round."""
        if self.behaviour == "agreeable":
            return command.round < 2
        if self.behaviour == "stubborn":
            return False
        if self.behaviour == "contrarian":
            return True
        return not (topic_is_agreeable(command.topic, self._seed) and command.round >= 3)

    def _with_continue(self, answer: dict[str, Any], command: RunTurn) -> dict[str, Any]:
        if command.ask_continue:
            answer["continue"] = self._continues(command)
        return answer


async def _stream(answer: str, on_delta: DeltaFn, delay: float) -> None:
    """``answer`` in about :data:`STREAM_PIECES` word-aligned pieces, ``delay`` apart."""
    words = re.findall(r"\S+\s*", answer) or [answer]
    size = max(1, -(-len(words) // STREAM_PIECES))
    for i in range(0, len(words), size):
        if i and delay > 0:
            await asyncio.sleep(delay)
        await on_delta("".join(words[i : i + size]))
