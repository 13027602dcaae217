"""The offline demo provider: deterministic, plausible debate text with no network.

Everything a turn produces is a function of (demo seed, topic, agent, round, phase) and the
peers named in the command, so a demo debate replays identically. Whether the final vote
reaches consensus depends on the topic (:func:`topic_is_agreeable`), so demos show both.
"""

from __future__ import annotations

import asyncio
import hashlib
import random

from aragora.agent_runner.providers.base import TurnOutput
from aragora.agent_runner.providers.prompts import build_messages, one_line
from aragora.contracts.messages import RunTurn, Stance, Vote
from aragora.runtime.agents import AgentSpec
from aragora.runtime.settings import Settings

DEMO_MODEL = "demo-deterministic"

_OPENERS: dict[Stance, tuple[str, ...]] = {
    "affirmative": ('On "{t}", I argue in favour.', 'My answer to "{t}" is yes.'),
    "negative": ('On "{t}", I argue against.', 'I am skeptical about "{t}".'),
    "neutral": (
        'On "{t}", I see real merit on both sides.',
        'Weighing "{t}" impartially, neither side wins outright.',
    ),
}
_REASONS: dict[Stance, tuple[str, ...]] = {
    "affirmative": (
        "The benefits compound over time and outweigh the transition costs.",
        "Evidence from comparable cases points to clear gains.",
        "Doing it deliberately, with checkpoints, keeps the risks manageable.",
        "Waiting has a cost of its own that is easy to overlook.",
    ),
    "negative": (
        "The costs come first while the benefits remain speculative.",
        "Comparable efforts have often failed for reasons that apply here too.",
        "Some of the risks would be hard to reverse once taken.",
        "A smaller, reversible step would test the idea more cheaply.",
    ),
    "neutral": (
        "The answer depends mostly on context and on how success is measured.",
        "There are real benefits, but the risks deserve a pilot first.",
        "The strongest arguments on each side rest on different assumptions.",
        "A staged approach would show whose assumptions hold.",
    ),
}
_WEAKNESSES = (
    "underestimates the transition costs",
    "leans on optimistic assumptions",
    "does not say how success would be measured",
    "skips over the strongest counter-argument",
    "needs evidence for its central claim",
)


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()


def topic_is_agreeable(topic: str, seed: int) -> bool:
    """Whether demo agents converge on this topic (about two topics in three)."""
    return int.from_bytes(_digest(seed, topic)[:8], "big") % 3 != 0


def _peers(command: RunTurn) -> list[str]:
    """Other agents named in the context, in first-appearance order."""
    seen: list[str] = []
    for message in command.context:
        if message.agent != command.agent and message.agent not in seen:
            seen.append(message.agent)
    return seen


def _join_names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class DemoProvider:
    """Deterministic offline agent; sleeps ``settings.demo_latency_ms`` per turn."""

    kind: str = "demo"

    def __init__(self, spec: AgentSpec, settings: Settings) -> None:
        self._model = spec.model or DEMO_MODEL
        self._seed = settings.demo_seed
        self._latency_s = max(0, settings.demo_latency_ms) / 1000

    def __repr__(self) -> str:
        return f"DemoProvider(model={self._model!r}, seed={self._seed})"

    async def run_turn(self, command: RunTurn) -> TurnOutput:
        """Write this agent's text (and ballot, on vote turns) for the command."""
        if self._latency_s > 0:
            await asyncio.sleep(self._latency_s)
        rng = random.Random(
            _digest(self._seed, command.topic, command.agent, command.round, command.phase)
        )
        topic = one_line(command.topic, 120)
        vote: Vote | None = None
        if command.phase == "propose":
            content = self._propose(command.stance, topic, rng)
        elif command.phase == "critique":
            content = self._critique(command, topic, rng)
        elif command.phase == "revise":
            content = self._revise(command, topic, rng)
        else:
            vote = self._vote(command, rng)
            content = vote.reasoning if vote else f'No candidates to vote for on "{topic}".'
        prompt_chars = sum(len(m["content"]) for m in build_messages(command))
        return TurnOutput(
            content=content,
            vote=vote,
            model=self._model,
            prompt_tokens=max(1, prompt_chars // 4),
            completion_tokens=max(1, len(content) // 4),
        )

    async def aclose(self) -> None:
        """Nothing to release."""

    @staticmethod
    def _propose(stance: Stance, topic: str, rng: random.Random) -> str:
        opener = rng.choice(_OPENERS[stance]).format(t=topic)
        reasons = rng.sample(_REASONS[stance], k=rng.randint(1, 3))
        return " ".join([opener, *reasons])

    @staticmethod
    def _critique(command: RunTurn, topic: str, rng: random.Random) -> str:
        peers = _peers(command)
        if not peers:
            reason = rng.choice(_REASONS[command.stance])
            return f'No peer proposals on "{topic}" were available to critique. {reason}'
        sentences = [f'I reviewed the proposals on "{topic}" from a {command.stance} standpoint.']
        weaknesses = rng.sample(_WEAKNESSES, k=min(len(peers), 3))
        for peer, weakness in zip(peers, weaknesses, strict=False):
            sentences.append(f"{peer} makes a fair point but {weakness}.")
        return " ".join(sentences)

    @staticmethod
    def _revise(command: RunTurn, topic: str, rng: random.Random) -> str:
        peers = _peers(command)
        reason = rng.choice(_REASONS[command.stance])
        if command.round <= 1:
            concern = f"{peers[0]}'s concern" if peers else "the main objection"
            return (
                f'After the critiques I keep my {command.stance} view on "{topic}". {reason} '
                f"I now add a checkpoint to address {concern}."
            )
        others = _join_names(peers) if peers else "the other agents"
        return (
            f'Moving toward common ground with {others} on "{topic}", I now support a staged '
            f"approach. {reason} It keeps what is strongest in my {command.stance} view while "
            "answering the objections that held up."
        )

    def _vote(self, command: RunTurn, rng: random.Random) -> Vote | None:
        candidates = command.candidates
        if not candidates:
            return None
        is_candidate = command.agent in candidates
        if topic_is_agreeable(command.topic, self._seed):
            # Negative voters hold out for themselves; the rest converge on one answer.
            own = command.stance == "negative" and is_candidate
            choice = command.agent if own else candidates[0]
        else:
            choice = command.agent if is_candidate else candidates[-1]
        if choice == command.agent:
            reasoning = "I stand by my own final answer: it best survives the critiques."
        else:
            reasoning = f"{choice}'s final answer is the most convincing and best supported."
        return Vote(
            choice=choice, confidence=round(0.55 + 0.4 * rng.random(), 2), reasoning=reasoning
        )
