"""ELO ratings and vote calibration, folded from ``RatingChange`` records.

Pure: ratings are an immutable value rebuilt by applying the changes each debate
recorded, so replaying the stored events re-derives the same leaderboard.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import msgspec

from aragora.contracts.values import RatingChange

START = 1500.0
K = 32.0
OVERALL = "all"

WEIGHT_MIN = 0.5
WEIGHT_MAX = 2.0


class Ratings(msgspec.Struct, frozen=True):
    """Ratings and games played, per domain then agent; never mutated, ``apply`` copies."""

    values: dict[str, dict[str, float]] = {}
    games: dict[str, dict[str, int]] = {}

    def rating(self, agent: str, domain: str = OVERALL) -> float:
        """The agent's rating in ``domain``; ``START`` for an agent not seen there yet."""
        return self.values.get(domain, {}).get(agent, START)

    def apply(self, changes: Sequence[RatingChange]) -> Ratings:
        """A new ``Ratings`` with each change's delta added and one more game counted."""
        values = {domain: dict(agents) for domain, agents in self.values.items()}
        games = {domain: dict(agents) for domain, agents in self.games.items()}
        for change in changes:
            # Deltas, not `after` values: two debates that finish at the same time both
            # computed from the same `before`, and neither's change may be lost.
            current = values.setdefault(change.domain, {})
            current[change.agent] = round(
                current.get(change.agent, START) + (change.after - change.before), 2
            )
            played = games.setdefault(change.domain, {})
            played[change.agent] = played.get(change.agent, 0) + 1
        return Ratings(values=values, games=games)


def expected(ra: float, rb: float) -> float:
    """The expected score of a player rated ``ra`` against one rated ``rb``."""
    return 1.0 / (1.0 + math.pow(10.0, (rb - ra) / 400.0))


def debate_changes(
    ratings: Ratings,
    agents: Sequence[str],
    winner: str | None,
    domain: str,
    briers: Mapping[str, float] = {},
) -> list[RatingChange]:
    """Rating changes for one debate: the winner beat everyone, the others drew among themselves.

    All deltas use the ratings from before the debate (a simultaneous update), and
    opponents are summed in name order, so the order of ``agents`` cannot change the
    result. Returns one change per agent for ``domain`` and, unless it is ``OVERALL``,
    one more per agent for ``OVERALL``; sorted by domain order then agent name.
    No winner (no consensus) means no rating change.
    """
    if winner is None:
        return []
    players = sorted(set(agents))
    if winner not in players:
        raise ValueError(f"winner {winner!r} is not among the debate's agents")
    domains = [domain] if domain == OVERALL else [domain, OVERALL]
    changes: list[RatingChange] = []
    for dom in domains:
        before = {agent: ratings.rating(agent, dom) for agent in players}
        for agent in players:
            delta = K * math.fsum(
                _score(agent, other, winner) - expected(before[agent], before[other])
                for other in players
                if other != agent
            )
            changes.append(
                RatingChange(
                    agent=agent,
                    domain=dom,
                    before=round(before[agent], 2),
                    after=round(before[agent] + delta, 2),
                    brier=briers.get(agent),
                )
            )
    return changes


def vote_weight(rating: float) -> float:
    """A vote's weight from its voter's rating: 1.0 at START, +/-0.3 per 500 points, clamped."""
    return min(WEIGHT_MAX, max(WEIGHT_MIN, 1.0 + ((rating - START) / 500.0) * 0.3))


def brier(confidence: float, correct: bool) -> float:
    """The Brier score of one vote: 0 is perfectly calibrated, 1 is confidently wrong."""
    p = min(1.0, max(0.0, confidence))
    return (p - (1.0 if correct else 0.0)) ** 2


def calibration(briers: Sequence[float]) -> float | None:
    """The mean Brier score (lower is better); ``None`` when there is nothing to score."""
    if not briers:
        return None
    return math.fsum(briers) / len(briers)


def leaderboard(ratings: Ratings, domain: str = OVERALL) -> list[tuple[str, float, int]]:
    """``(agent, rating, games)`` for every rated agent in ``domain``, best first, ties by name."""
    rated = ratings.values.get(domain, {})
    played = ratings.games.get(domain, {})
    rows = [(agent, rating, played.get(agent, 0)) for agent, rating in rated.items()]
    return sorted(rows, key=lambda row: (-row[1], row[0]))


def _score(agent: str, other: str, winner: str) -> float:
    if agent == winner:
        return 1.0
    return 0.0 if other == winner else 0.5
