"""Debate events as text: the pure functions behind ``aragora ask``'s output.

Every function here turns a debate event into :class:`rich.text.Text` lines (or a panel, or
plain strings) without touching the terminal, so the output can be unit tested.

Text produced by agents (and anything else that came over the wire) is untrusted: it is
always placed into ``Text`` objects as literal characters, never parsed as rich markup, and
it is stripped of control characters (terminal escape sequences, bidi overrides) first.
"""

from __future__ import annotations

import re

from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from aragora.contracts.messages import (
    ConvergenceMeasured,
    DebateCompleted,
    DebateCreated,
    DebateEventType,
    DebateFailed,
    DebateQueued,
    PhaseStarted,
    RoundStarted,
    TurnCompleted,
    TurnFailed,
)

TURN_PREVIEW_CHARS = 300
"""How much of a turn's content is shown."""

REASONING_PREVIEW_CHARS = 200
"""How much of a ballot's reasoning is shown."""

ANSWER_PREVIEW_CHARS = 1500
"""How much of the winning answer the outcome panel shows."""

PHASES_PER_ROUND = 3
"""propose, critique and revise; the vote follows the last round."""

# C0 controls except tab/newline, DEL, C1 controls, and bidirectional overrides/isolates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"[ \t]+")

_AGENT_STYLE = "bold cyan"
_META_STYLE = "dim"
_FAIL_STYLE = "bold red"


def expected_turns(agent_count: int, rounds: int, consensus: str = "majority") -> int:
    """Turns a full-length debate takes: propose, critique and revise per round, one vote
    each (none in ``none`` mode), the judge's ruling (``judge``), and one synthesis.
    An early stop or a skipped critique ends below this; the bar then jumps to done."""
    votes = 0 if consensus == "none" else agent_count
    judge = 1 if consensus == "judge" else 0
    return agent_count * PHASES_PER_ROUND * rounds + votes + judge + 1


def counts_as_turn(event: DebateEventType) -> bool:
    """Whether ``event`` finishes a turn (successfully or not) and so advances the progress."""
    return isinstance(event, TurnCompleted | TurnFailed)


def exit_code(event: DebateEventType) -> int | None:
    """The CLI exit code a terminal event implies (0 completed, 1 failed); None otherwise."""
    if isinstance(event, DebateCompleted):
        return 0
    if isinstance(event, DebateFailed):
        return 1
    return None


def sanitize(text: str) -> str:
    """``text`` without control characters that could drive the terminal."""
    return _UNSAFE.sub("", text)


def preview(text: str, limit: int = TURN_PREVIEW_CHARS, *, keep_newlines: bool = False) -> str:
    """``text`` made safe and compact: whitespace collapsed, cut at ``limit`` characters."""
    clean = sanitize(text)
    if keep_newlines:
        lines = (_SPACES.sub(" ", line).strip() for line in clean.splitlines())
        clean = "\n".join(line for line in lines if line)
    else:
        clean = " ".join(clean.split())
    if len(clean) > limit:
        clean = clean[: max(limit - 3, 0)].rstrip() + "..."
    return clean


def percent(ratio: float) -> str:
    """``0.666`` -> ``"67%"``."""
    return f"{ratio * 100:.0f}%"


def _where(phase: str, round_: int) -> Text:
    return Text(f"[{phase}, round {round_}]", style=_META_STYLE)


def _names(names: list[str]) -> str:
    return ", ".join(sanitize(n) for n in names) if names else "-"


def header_lines(event: DebateCreated) -> list[Text]:
    """The debate header: topic, agents, rounds and the consensus rule."""
    return [
        Text.assemble(("Debate ", "bold"), (sanitize(event.debate_id), _META_STYLE)),
        Text.assemble(("Topic: ", "bold"), preview(event.topic, 1000)),
        Text.assemble(("Agents: ", "bold"), (_names(event.agents), _AGENT_STYLE)),
        Text.assemble(
            ("Rounds: ", "bold"),
            str(event.rounds),
            (f"  (consensus: {event.consensus}, threshold {percent(event.threshold)})", "dim"),
        ),
    ]


def round_line(event: RoundStarted) -> Text:
    """A separator announcing a round."""
    return Text(f"== Round {event.round} ==", style="bold magenta")


def phase_line(event: PhaseStarted) -> Text:
    """A line announcing a phase and who takes part."""
    agents = _names([turn.agent for turn in event.turns])
    return Text.assemble(
        ("-- ", "magenta"),
        (event.phase, "bold magenta"),
        (f" (round {event.round}): ", "magenta"),
        (agents, _AGENT_STYLE),
    )


def turn_line(event: TurnCompleted) -> Text:
    """One agent's finished turn; in the vote phase, its ballot."""
    line = Text.assemble("  ", (sanitize(event.agent), _AGENT_STYLE), " ")
    line.append_text(_where(event.phase, event.round))
    if event.vote is not None:
        vote = event.vote
        line.append(" votes -> ")
        line.append(sanitize(vote.choice), style="bold green")
        line.append(f" (confidence {vote.confidence:.2f})", style=_META_STYLE)
        if vote.reasoning.strip():
            line.append(": " + preview(vote.reasoning, REASONING_PREVIEW_CHARS))
    else:
        line.append(": " + preview(event.content))
    return line


def turn_failed_line(event: TurnFailed) -> Text:
    """A failed turn, in red, with the reason."""
    line = Text.assemble(
        ("  x ", _FAIL_STYLE),
        (sanitize(event.agent), _FAIL_STYLE),
        " ",
        (f"[{event.phase}, round {event.round}]", "red"),
        (f" failed: {event.reason}", _FAIL_STYLE),
    )
    if event.detail.strip():
        line.append(" - " + preview(event.detail, REASONING_PREVIEW_CHARS), style="red")
    return line


def outcome_title(event: DebateCompleted | DebateFailed) -> Text:
    """The headline of a finished debate."""
    if isinstance(event, DebateFailed):
        return Text(f"Debate {event.status}", style=_FAIL_STYLE)
    if event.consensus.reached:
        return Text("Consensus reached", style="bold green")
    return Text("No consensus", style="bold yellow")


def outcome_lines(event: DebateCompleted | DebateFailed) -> list[Text]:
    """The body of the outcome: consensus details, or the failure reason."""
    if isinstance(event, DebateFailed):
        return [Text.assemble(("Reason: ", "bold"), (preview(event.reason, 1000), "red"))]
    c = event.consensus
    lines = [
        Text.assemble(("Reached: ", "bold"), "yes" if c.reached else "no"),
        Text.assemble(
            ("Agreement: ", "bold"),
            percent(c.agreement_ratio),
            (f" (threshold {percent(c.threshold)})", _META_STYLE),
        ),
        Text.assemble(("Confidence: ", "bold"), f"{c.confidence:.2f}"),
        Text.assemble(("Winner: ", "bold"), (sanitize(c.winner or "-"), _AGENT_STYLE)),
    ]
    answer = preview(c.answer, ANSWER_PREVIEW_CHARS, keep_newlines=True) if c.answer else "-"
    lines.append(Text.assemble(("Answer: ", "bold"), answer))
    lines.append(Text.assemble(("Supporters: ", "bold"), (_names(c.supporters), "green")))
    lines.append(Text.assemble(("Dissenters: ", "bold"), (_names(c.dissenters), "yellow")))
    if event.proof is not None:
        for dissent in event.proof.dissent:
            reasons = "; ".join(dissent.reasons) or "-"
            lines.append(
                Text.assemble(
                    ("  dissent ", _META_STYLE),
                    (sanitize(dissent.agent), _AGENT_STYLE),
                    f": {preview(reasons, REASONING_PREVIEW_CHARS)}",
                )
            )
    if event.synthesis:
        synthesis = preview(event.synthesis, ANSWER_PREVIEW_CHARS, keep_newlines=True)
        lines.append(Text.assemble(("Synthesis: ", "bold"), synthesis))
    if event.reason:
        lines.append(Text.assemble(("Ended by: ", "bold"), sanitize(event.reason)))
    if event.failures:
        failed = ", ".join(f"{f.agent} ({f.phase}: {f.reason})" for f in event.failures)
        lines.append(Text.assemble(("Agent failures: ", "bold"), (sanitize(failed), "red")))
    return lines


def outcome_panel(event: DebateCompleted | DebateFailed) -> Panel:
    """The outcome boxed, for terminals."""
    if isinstance(event, DebateFailed):
        border = "red"
    else:
        border = "green" if event.consensus.reached else "yellow"
    return Panel(
        Group(*outcome_lines(event)),
        title=outcome_title(event),
        title_align="left",
        border_style=border,
        expand=False,
    )


def event_lines(event: DebateEventType) -> list[Text]:
    """The lines that describe ``event`` (a terminal event: its title, then its body)."""
    if isinstance(event, DebateCreated):
        return header_lines(event)
    if isinstance(event, RoundStarted):
        return [round_line(event)]
    if isinstance(event, PhaseStarted):
        return [phase_line(event)]
    if isinstance(event, TurnCompleted):
        return [turn_line(event)]
    if isinstance(event, TurnFailed):
        return [turn_failed_line(event)]
    if isinstance(event, DebateQueued):
        return [Text(f"queued: position {event.position} (server at capacity)", style=_META_STYLE)]
    if isinstance(event, ConvergenceMeasured):
        return [convergence_line(event)]
    return [outcome_title(event), *outcome_lines(event)]


def convergence_line(event: ConvergenceMeasured) -> Text:
    """Round-end convergence: how much positions moved, STOP votes, an early stop."""
    similarity = "-" if event.min_similarity is None else f"{event.min_similarity:.2f}"
    line = Text.assemble(
        (f"   convergence after round {event.round}: ", _META_STYLE),
        (event.status or "n/a", "bold"),
        (f" (lowest similarity {similarity}, {event.method}", _META_STYLE),
    )
    if event.stop_share is not None:
        line.append(f", STOP {percent(event.stop_share)}", style=_META_STYLE)
    line.append(")", style=_META_STYLE)
    if event.early_stop:
        line.append(f" -> stopping early: {sanitize(event.reason)}", style="bold")
    return line


def plain_lines(event: DebateEventType) -> list[str]:
    """``event`` as unstyled lines, for pipes and logs."""
    return [line.plain for line in event_lines(event)]
