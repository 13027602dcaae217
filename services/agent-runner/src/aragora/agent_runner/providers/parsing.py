"""Parsing of structured answers: critiques, revisions and ballots (vote and judge).

Model text is untrusted: the parsers only read values out of it, bound their lengths, and
clamp numbers (confidence to [0, 1], severity to [0, 10]). They are lenient about where the
JSON is (bare, in prose, inside ``` fences, with trailing commas) and about key names
(``vote``/``winner`` for ``choice``, ``weaknesses`` for ``issues``, ...), strict about
meaning: a ballot must name a candidate, a critique a target. Failures raise
:class:`AnswerError` with a short message fit to send back to the model.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from aragora.agent_runner.providers.prompts import critique_targets
from aragora.agent_runner.providers.readers import (
    DEFAULT_CONFIDENCE,
    confidence,
    first,
    items,
    json_objects,
    norm_keys,
    severity,
    text_value,
)
from aragora.contracts.messages import Critique, RunTurn, Vote

_CHOICE_KEYS = ("choice", "vote", "candidate", "winner", "best", "selected")
_CRITIQUES_KEYS = ("critiques", "critique", "reviews", "review", "feedback")
_TARGET_KEYS = ("target", "agent", "peer", "author", "name", "candidate")
_ISSUE_KEYS = ("issues", "issue", "weaknesses", "problems", "concerns", "flaws")
_SUGGESTION_KEYS = ("suggestions", "suggestion", "improvements", "recommendations", "fixes")
_SEVERITY_KEYS = ("severity", "score", "rating")
_REVISED_KEYS = ("revised", "revision", "revised_proposal", "proposal", "answer", "text")
_CONTINUE_KEYS = ("continue", "continue_debate", "decision")
_CONDITION_KEYS = ("conditions", "condition", "caveats")
_YES = frozenset({"true", "yes", "continue", "y", "1"})
_NO = frozenset({"false", "no", "stop", "n", "0"})


class AnswerError(ValueError):
    """An answer that does not have the shape the phase asked for.

    ``retryable`` is False when re-asking cannot help (e.g. a ballot with no candidates).
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Parsed(msgspec.Struct, frozen=True, kw_only=True):
    """What a structured answer yields; ``content`` is a readable rendering of it."""

    content: str
    vote: Vote | None = None
    critiques: list[Critique] = []
    continue_debate: bool | None = None


def _continue(obj: dict[str, Any], command: RunTurn) -> bool | None:
    """CONTINUE (True) / STOP (False) when asked; None when not asked."""
    if not command.ask_continue:
        return None
    raw = first(obj, _CONTINUE_KEYS)
    if raw is None and isinstance(obj.get("stop"), bool):
        return not obj["stop"]
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().casefold() in _YES | _NO:
        return raw.strip().casefold() in _YES
    raise AnswerError('missing "continue": true to CONTINUE the debate, false to STOP')


def _match(raw: object, names: list[str]) -> str | None:
    """The name ``raw`` designates: equal ignoring case, else the only name it mentions."""
    if not isinstance(raw, str) or not names:
        return None
    key = raw.strip().strip("\"'@").casefold()
    by_key = {n.strip().casefold(): n for n in names}
    if key in by_key:
        return by_key[key]
    mentioned = [
        n for n in names if re.search(rf"(?<![\w-]){re.escape(n.casefold())}(?![\w-])", key)
    ]
    return mentioned[0] if len(mentioned) == 1 else None


def _quoted(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)[:60]


def render_ballot(vote: Vote) -> str:
    """A ballot as readable text; it starts with ``Choice: <name>`` (peers read it)."""
    content = f"Choice: {vote.choice} (confidence {vote.confidence:.2f})."
    if vote.reasoning:
        content += f" {vote.reasoning}"
    if vote.conditions:
        content += f" Conditions: {vote.conditions}"
    return content


def parse_ballot(text: str, command: RunTurn) -> Parsed:
    """A vote or judge answer: a :class:`Vote` for one of ``command.candidates``."""
    candidates = list(command.candidates)
    if not candidates:
        raise AnswerError("no candidates were offered", retryable=False)
    objects = [norm_keys(o) for o in json_objects(text)]
    if not objects:
        raise AnswerError("no JSON object found")
    rejected: object = None
    for obj in objects:
        raw = first(obj, _CHOICE_KEYS)
        if raw is None:
            continue
        choice = _match(raw, candidates)
        if choice is None:
            rejected = raw
            continue
        reasoning = text_value(obj.get("reasoning", obj.get("reason", "")))
        conditions = text_value(first(obj, _CONDITION_KEYS) or "")
        cont = _continue(obj, command)
        vote = Vote(
            choice=choice,
            confidence=confidence(obj.get("confidence", DEFAULT_CONFIDENCE)),
            reasoning=reasoning,
            conditions=conditions,
            continue_debate=cont,
        )
        return Parsed(content=render_ballot(vote), vote=vote, continue_debate=cont)
    if rejected is not None:
        raise AnswerError(f'"choice" {_quoted(rejected)} is not one of {_quoted(candidates)}')
    raise AnswerError('missing "choice" (the name of one candidate)')


def _critique(obj: dict[str, Any], targets: list[str]) -> Critique | None:
    target = _match(first(obj, _TARGET_KEYS), targets)
    if target is None:
        return None
    return Critique(
        target=target,
        issues=items(first(obj, _ISSUE_KEYS) or []),
        suggestions=items(first(obj, _SUGGESTION_KEYS) or []),
        severity=severity(first(obj, _SEVERITY_KEYS)),
    )


def _keyed_entries(obj: dict[str, Any], targets: list[str]) -> list[dict[str, Any]]:
    """``{"bob": {...}}`` (critiques keyed by target) as entries; else ``obj`` itself."""
    if first(obj, _TARGET_KEYS) is not None:
        return [obj]
    return [
        {**norm_keys(value), "target": key}
        for key, value in obj.items()
        if isinstance(value, dict) and _match(key, targets) is not None
    ]


def render_critiques(critiques: list[Critique]) -> str:
    """Critiques as readable text, one line per target."""
    if not critiques:
        return "No peer proposals to critique."
    lines = []
    for c in critiques:
        line = f"{c.target} (severity {c.severity:g}/10):"
        line += f" issues: {'; '.join(c.issues)}." if c.issues else " no issues."
        if c.suggestions:
            line += f" Suggestions: {'; '.join(c.suggestions)}."
        lines.append(line)
    return "\n".join(lines)


def parse_critique(text: str, command: RunTurn) -> Parsed:
    """A critique answer: one :class:`Critique` per target named (unknown targets dropped)."""
    targets = critique_targets(command)
    objects = [norm_keys(o) for o in json_objects(text)]
    if not objects:
        raise AnswerError("no JSON object found")
    entries: list[dict[str, Any]] = []
    for obj in objects:
        listed = first(obj, _CRITIQUES_KEYS)
        if isinstance(listed, list):
            entries += [norm_keys(e) for e in listed if isinstance(e, dict)]
        elif isinstance(listed, dict):
            entries += _keyed_entries(norm_keys(listed), targets)
        elif first(obj, _TARGET_KEYS) is not None:
            entries.append(obj)
    critiques: dict[str, Critique] = {}
    for entry in entries:
        critique = _critique(entry, targets)
        if critique is not None and critique.target not in critiques:
            critiques[critique.target] = critique
    if targets and not critiques:
        raise AnswerError(f'no critique names a target from {_quoted(targets)} in "critiques"')
    ordered = [critiques[t] for t in targets if t in critiques]
    return Parsed(content=render_critiques(ordered), critiques=ordered)


def parse_revision(text: str, command: RunTurn) -> Parsed:
    """A revise answer: the revised text, and CONTINUE/STOP when asked."""
    objects = [norm_keys(o) for o in json_objects(text)]
    if not objects:
        raise AnswerError("no JSON object found")
    for obj in objects:
        revised = text_value(first(obj, _REVISED_KEYS) or "")
        if revised:
            cont = _continue(obj, command)
            return Parsed(content=revised, continue_debate=cont)
    raise AnswerError('missing "revised" (your revised proposal as a string)')


def parse_answer(text: str, command: RunTurn) -> Parsed:
    """Parse ``text`` as the answer to ``command``'s phase; plain-text phases pass through."""
    if command.phase == "critique":
        return parse_critique(text, command)
    if command.phase == "revise":
        return parse_revision(text, command)
    if command.phase in ("vote", "judge"):
        return parse_ballot(text, command)
    stripped = text.strip()
    if not stripped:
        raise AnswerError("the answer is empty")
    return Parsed(content=stripped)
