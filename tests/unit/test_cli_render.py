"""Pure rendering of debate events for ``aragora ask``."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO
from typing import Any

import pytest
from rich.console import Console

from aragora.cli import render
from aragora.contracts.messages import (
    Consensus,
    DebateCompleted,
    DebateCreated,
    DebateEventType,
    DebateFailed,
    PhaseStarted,
    RoundStarted,
    TurnCompleted,
    TurnFailed,
    TurnSpec,
    Vote,
)

AGENTS = ["demo-1", "demo-2", "demo-3"]
MARKUP = "[red]x[/red] [bold]loud[/bold] [link=http://evil]click[/link]"


def _envelope(seq: int) -> dict[str, Any]:
    return {
        "event_id": f"e{seq}",
        "occurred_at": datetime(2025, 1, 1, tzinfo=UTC),
        "correlation_id": "d1",
        "debate_id": "d1",
        "seq": seq,
    }


def recorded_debate() -> list[DebateEventType]:
    """A one-round debate: demo-3 fails to critique, then everyone votes for demo-1."""
    events: list[DebateEventType] = []

    def add(cls: Any, **fields: Any) -> None:
        events.append(cls(**_envelope(len(events) + 1), **fields))

    add(
        DebateCreated,
        topic="Should we use tabs?",
        agents=AGENTS,
        rounds=1,
        consensus="majority",
        threshold=0.6,
    )
    add(RoundStarted, round=1)
    for phase in ("propose", "critique", "revise"):
        turns = [TurnSpec(turn_id=f"{phase}-{a}", agent=a, stance="neutral") for a in AGENTS]
        add(PhaseStarted, round=1, phase=phase, turns=turns)
        for agent in AGENTS:
            if phase == "critique" and agent == "demo-3":
                add(
                    TurnFailed,
                    turn_id=f"{phase}-{agent}",
                    round=1,
                    phase=phase,
                    agent=agent,
                    reason="timeout",
                    detail="no answer in 60s",
                )
                continue
            content = MARKUP if agent == "demo-2" else f"{agent} says {phase} " + "x" * 400
            add(
                TurnCompleted,
                turn_id=f"{phase}-{agent}",
                round=1,
                phase=phase,
                agent=agent,
                content=content,
            )
    turns = [TurnSpec(turn_id=f"vote-{a}", agent=a, stance="neutral") for a in AGENTS]
    add(PhaseStarted, round=1, phase="vote", turns=turns)
    for agent in AGENTS:
        add(
            TurnCompleted,
            turn_id=f"vote-{agent}",
            round=1,
            phase="vote",
            agent=agent,
            content="",
            vote=Vote(choice="demo-1", confidence=0.8, reasoning="clearest"),
        )
    add(
        DebateCompleted,
        status="consensus",
        consensus=Consensus(
            reached=True,
            agreement_ratio=2 / 3,
            confidence=0.8,
            threshold=0.6,
            winner="demo-1",
            answer="Use spaces.\n\nTabs [red]are[/red] fine too.",
            supporters=["demo-1", "demo-2"],
            dissenters=["demo-3"],
        ),
    )
    return events


def _all_plain(events: list[DebateEventType]) -> str:
    return "\n".join(line for e in events for line in render.plain_lines(e))


def test_expected_turns_counts_phases_votes_judge_and_synthesis() -> None:
    assert render.expected_turns(3, 1) == 13  # 9 + 3 votes + 1 synthesis
    assert render.expected_turns(2, 3) == 21
    assert render.expected_turns(3, 1, "judge") == 14
    assert render.expected_turns(3, 1, "none") == 10
    events = recorded_debate()  # a recording from before synthesis turns existed
    assert sum(render.counts_as_turn(e) for e in events) == render.expected_turns(3, 1) - 1


def test_convergence_and_queue_events_render_without_crashing() -> None:
    from datetime import UTC, datetime

    from aragora.contracts.messages import ConvergenceMeasured, DebateQueued

    env = {"occurred_at": datetime.now(UTC), "correlation_id": "c", "debate_id": "d"}
    queued = DebateQueued(**env, event_id="q", seq=2, position=3)  # type: ignore[arg-type]
    measured = ConvergenceMeasured(
        **env,  # type: ignore[arg-type]
        event_id="m", seq=9, round=2, method="tfidf", similarities={"a": 0.9},
        min_similarity=0.9, status="converged", stop_share=1.0, early_stop=True,
        reason="converged",
    )  # fmt: skip
    assert "position 3" in render.plain_lines(queued)[0]
    assert "stopping early: converged" in render.plain_lines(measured)[0]


def test_recorded_debate_renders_header_rounds_turns_votes_and_outcome() -> None:
    text = _all_plain(recorded_debate())
    assert "Topic: Should we use tabs?" in text
    assert "Agents: demo-1, demo-2, demo-3" in text
    assert "Rounds: 1" in text
    assert "== Round 1 ==" in text
    assert "-- critique (round 1): demo-1, demo-2, demo-3" in text
    assert "demo-1 [propose, round 1]: demo-1 says propose" in text
    assert "x demo-3 [critique, round 1] failed: timeout - no answer in 60s" in text
    assert "demo-2 [vote, round 1] votes -> demo-1 (confidence 0.80): clearest" in text
    assert "Consensus reached" in text
    assert "Agreement: 67% (threshold 60%)" in text
    assert "Confidence: 0.80" in text
    assert "Winner: demo-1" in text
    assert "Supporters: demo-1, demo-2" in text
    assert "Dissenters: demo-3" in text


def test_turn_content_is_cut_to_about_300_characters() -> None:
    turn = next(e for e in recorded_debate() if isinstance(e, TurnCompleted))
    (line,) = render.plain_lines(turn)
    assert line.endswith("...")
    content = line.split("]: ", 1)[1]
    assert len(content) <= render.TURN_PREVIEW_CHARS


def test_markup_in_agent_text_is_shown_literally() -> None:
    events = recorded_debate()
    turn = next(e for e in events if isinstance(e, TurnCompleted) and e.agent == "demo-2")
    (line,) = render.event_lines(turn)
    assert MARKUP in line.plain
    # No span styles the untrusted part: only our own name/meta spans exist.
    assert all(span.end <= line.plain.index(MARKUP) for span in line.spans)

    console = Console(file=StringIO(), force_terminal=True, width=200, color_system="truecolor")
    console.print(line)
    console.print(render.outcome_panel(events[-1]))  # type: ignore[arg-type]
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[red]x[/red]" in output
    assert "[link=http://evil]click[/link]" in output
    assert "Tabs [red]are[/red] fine too." in output


def test_control_characters_are_stripped() -> None:
    evil = "ok\x1b[2J\x1b]8;;http://evil\x07hi\u202etxt.exe\x9b"
    assert render.sanitize(evil) == "ok[2J]8;;http://evilhitxt.exe"
    assert "\x1b" not in render.preview(evil)


def test_preview_collapses_whitespace_unless_keeping_newlines() -> None:
    assert render.preview("a \n\n  b\tc") == "a b c"
    assert render.preview("a  \n\n  b", keep_newlines=True) == "a\nb"
    assert render.preview("abcdefghij", 8) == "abcde..."


def test_no_consensus_outcome() -> None:
    event = DebateCompleted(
        **_envelope(9),
        status="no_consensus",
        consensus=Consensus(
            reached=False,
            agreement_ratio=1 / 3,
            confidence=0.5,
            threshold=0.6,
            winner=None,
            answer=None,
            supporters=[],
            dissenters=["demo-1", "demo-2", "demo-3"],
        ),
    )
    lines = render.plain_lines(event)
    assert lines[0] == "No consensus"
    assert "Reached: no" in lines
    assert "Winner: -" in lines
    assert "Answer: -" in lines
    assert "Supporters: -" in lines
    assert render.exit_code(event) == 0


def test_failed_outcome_and_exit_codes() -> None:
    failed = DebateFailed(**_envelope(5), status="timeout", reason="debate exceeded 600s")
    assert render.plain_lines(failed) == ["Debate timeout", "Reason: debate exceeded 600s"]
    assert render.exit_code(failed) == 1
    assert render.exit_code(RoundStarted(**_envelope(2), round=1)) is None
    console = Console(file=StringIO(), width=80)
    console.print(render.outcome_panel(failed))
    assert "debate exceeded 600s" in console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("ratio", [0.0, 0.5, 1.0])
def test_percent(ratio: float) -> None:
    assert render.percent(ratio) == f"{round(ratio * 100)}%"
