"""Deterministic debate text of the offline demo agents: pure functions of their inputs.

Each function takes a seeded ``random.Random`` (or derives one with :func:`rng_for`) so
the same (seed, topic, agent, round, phase) always writes the same words.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter

from aragora.contracts.messages import RunTurn, Stance

_OPENERS: dict[Stance, tuple[str, ...]] = {
    "affirmative": ('On "{t}", I argue in favour.', 'My answer to "{t}" is yes.'),
    "negative": ('On "{t}", I argue against.', 'I am skeptical about "{t}".'),
    "neutral": (
        'On "{t}", I see real merit on both sides.',
        'Weighing "{t}" impartially, neither side wins outright.',
    ),
}
REASONS: dict[Stance, tuple[str, ...]] = {
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
WEAKNESSES = (
    "underestimates the transition costs",
    "leans on optimistic assumptions",
    "does not say how success would be measured",
    "skips over the strongest counter-argument",
    "needs evidence for its central claim",
)
SUGGESTIONS = (
    "name a measurable success criterion",
    "add a reversible pilot before committing",
    "address the strongest objection directly",
    "cite evidence from a comparable case",
    "say who bears the costs and when",
)


def digest(*parts: object) -> bytes:
    """SHA-256 of the parts, joined unambiguously."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()


def rng_for(*parts: object) -> random.Random:
    """A generator seeded from the parts (the same parts, the same sequence)."""
    return random.Random(digest(*parts))


def topic_is_agreeable(topic: str, seed: int) -> bool:
    """Whether demo agents converge on this topic (about two topics in three)."""
    return int.from_bytes(digest(seed, topic)[:8], "big") % 3 != 0


def peers(command: RunTurn) -> list[str]:
    """Other agents named in the context, in first-appearance order."""
    seen: list[str] = []
    for message in command.context:
        if message.agent != command.agent and message.agent not in seen:
            seen.append(message.agent)
    return seen


def join_names(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def proposal(stance: Stance, topic: str, rng: random.Random) -> str:
    """An opening position: an opener and one to three reasons for the stance."""
    opener = rng.choice(_OPENERS[stance]).format(t=topic)
    reasons = rng.sample(REASONS[stance], k=rng.randint(1, 3))
    return " ".join([opener, *reasons])


def fixed_position(seed: int, topic: str, agent: str) -> str:
    """A position that depends on neither round nor stance (the stubborn agent's)."""
    rng = rng_for(seed, topic, agent, "position")
    stance: Stance = "affirmative" if rng.random() < 0.5 else "negative"
    return proposal(stance, topic, rng)


def revision(command: RunTurn, topic: str, rng: random.Random) -> str:
    """A stance-driven revision: keeps its view in round 1, then moves to common ground."""
    names = peers(command)
    reason = rng.choice(REASONS[command.stance])
    if command.round <= 1:
        concern = f"{names[0]}'s concern" if names else "the main objection"
        return (
            f'After the critiques I keep my {command.stance} view on "{topic}". {reason} '
            f"I now add a checkpoint to address {concern}."
        )
    others = join_names(names) if names else "the other agents"
    return (
        f'Moving toward common ground with {others} on "{topic}", I now support a staged '
        f"approach. {reason} It keeps what is strongest in my {command.stance} view while "
        "answering the objections that held up."
    )


def converging_revision(seed: int, topic: str, agent: str, round_: int) -> str:
    """The agreeable agent's revision: the same text from round 2 on (round 1 is close)."""
    reason = rng_for(seed, topic, agent, "agreeable").choice(REASONS["neutral"])
    text = (
        f'I now side with the common ground emerging among the agents on "{topic}": a '
        f"staged approach with clear checkpoints that keeps the strongest points raised so "
        f"far. {reason}"
    )
    return text if round_ <= 1 else text + " I am ready to settle on it."


def contrarian_revision(topic: str, rng: random.Random) -> str:
    """The contrarian's revision: still against where the others are heading."""
    reason = rng.choice(REASONS["negative"])
    return (
        f'I still disagree with where the others are taking "{topic}". {reason} '
        "The consensus forming here has not answered the hardest objections."
    )


def _winner(command: RunTurn) -> str:
    """The judge's choice, else the most chosen candidate, from ``Choice: x`` ballots."""
    names = list(command.candidates) or peers(command) or [command.agent]
    tally: Counter[str] = Counter()
    for message in command.context:
        if message.phase not in ("vote", "judge"):
            continue
        chosen = [n for n in names if message.content.startswith(f"Choice: {n} ")]
        if not chosen:
            continue
        choice = max(chosen, key=len)
        if message.phase == "judge":
            return choice
        tally[choice] += 1
    if not tally:
        return names[0]
    top = max(tally.values())
    return next(n for n in names if tally[n] == top)


def synthesis(command: RunTurn, topic: str) -> str:
    """One final answer built on the winner's (see :func:`_winner`) latest answer."""
    winner = _winner(command)
    answers = [m.content for m in command.context if m.agent == winner and m.phase == "revise"]
    answer = " ".join(answers[-1].split())[:240] if answers else "(its answer was not shown)"
    others = list(dict.fromkeys(a for a in [*command.candidates, *peers(command)] if a != winner))
    tensions = (
        f"{join_names(others)} still see risks that the rollout should monitor."
        if others
        else "none were left unanswered."
    )
    return (
        f'Decision on "{topic}": the debate settles on {winner}\'s answer: "{answer}" '
        "It rests on the arguments that survived the critiques and on the support it "
        f"gathered in the vote. Open tensions: {tensions}"
    )
