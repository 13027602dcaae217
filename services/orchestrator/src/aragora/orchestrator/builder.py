"""The small machinery every decision shares: injected context, the decision, and a
builder that gives events contiguous ``seq`` and folds them as it goes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from aragora.contracts.messages import DebateEvent, RunTurn
from aragora.contracts.values import Stance
from aragora.orchestrator import ratings as elo
from aragora.orchestrator import similarity
from aragora.orchestrator.state import DebateState, evolve

STANCES: tuple[Stance, ...] = ("affirmative", "negative", "neutral")
IdFactory = Callable[[], str]


@dataclass(frozen=True)
class Ctx:
    """What a decision may depend on besides the state: injected, so rules stay pure."""

    now: datetime
    ids: IdFactory
    ratings: elo.Ratings = field(default_factory=elo.Ratings)
    similarity_method: similarity.Method = "tfidf"


@dataclass(frozen=True)
class Decision:
    events: list[DebateEvent]
    commands: list[RunTurn]


NOTHING = Decision(events=[], commands=[])


def stance_of(index: int, round_: int) -> Stance:
    # Rotates by agent index and round, as the reference system does.
    return STANCES[(index + round_ - 1) % len(STANCES)]


class Builder:
    """Accumulates events with contiguous seq and the commands they imply."""

    def __init__(self, state: DebateState | None, ctx: Ctx, cause: str) -> None:
        self.state = state
        self.ctx = ctx
        self.cause = cause
        self.decision = Decision(events=[], commands=[])

    @property
    def s(self) -> DebateState:
        assert self.state is not None
        return self.state

    def env(self) -> dict[str, object]:
        return {
            "event_id": self.ctx.ids(),
            "occurred_at": self.ctx.now,
            "correlation_id": self.s.created.correlation_id,
            "causation_id": self.cause,
            "debate_id": self.s.debate_id,
            "seq": self.s.seq + 1,
        }

    def emit(self, event: DebateEvent) -> None:
        self.state = evolve(self.state, event)
        self.decision.events.append(event)
