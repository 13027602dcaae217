"""Small factories of messages shared by the tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from aragora.contracts.messages import PeerMessage, RunTurn
from aragora.contracts.values import Phase, Role, Stance

ENVELOPE_TIME = datetime(2025, 1, 1, tzinfo=UTC)


def run_turn(
    *,
    phase: str = "propose",
    agent: str = "alice",
    stance: str = "affirmative",
    topic: str = "Should cities ban cars downtown?",
    round: int = 1,
    turn_id: str = "t1",
    debate_id: str = "d1",
    context: list[PeerMessage] | None = None,
    candidates: list[str] | None = None,
    targets: list[str] | None = None,
    timeout_seconds: float = 60.0,
    role: str = "proposer",
    ask_continue: bool = False,
    persona: str = "",
) -> RunTurn:
    """A ``RunTurn`` command with a fixed envelope (event ``e1``, correlation ``c1``).

    Every field a test varies is a keyword argument; the defaults are a first-round
    proposal by ``alice``. ``phase``, ``stance`` and ``role`` are plain strings so that
    parametrized tests can pass them; the command does not validate them on construction.
    Lists left out are empty, as in ``RunTurn`` itself.
    """
    return RunTurn(
        event_id="e1",
        occurred_at=ENVELOPE_TIME,
        correlation_id="c1",
        turn_id=turn_id,
        debate_id=debate_id,
        round=round,
        phase=cast(Phase, phase),
        agent=agent,
        stance=cast(Stance, stance),
        topic=topic,
        context=[] if context is None else context,
        candidates=[] if candidates is None else candidates,
        timeout_seconds=timeout_seconds,
        role=cast(Role, role),
        targets=[] if targets is None else targets,
        ask_continue=ask_continue,
        persona=persona,
    )
