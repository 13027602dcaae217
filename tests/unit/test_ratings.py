"""ELO ratings and calibration folded from RatingChange records: pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aragora.contracts.values import RatingChange
from aragora.orchestrator.ratings import (
    OVERALL,
    START,
    Ratings,
    brier,
    calibration,
    debate_changes,
    expected,
    leaderboard,
    vote_weight,
)

NAMES = ["ann", "bob", "cy", "dee", "eve", "fay"]
ratings_values = st.floats(min_value=600.0, max_value=2600.0, allow_nan=False)


@st.composite
def debates(draw: st.DrawFn) -> tuple[Ratings, list[str], str, str]:
    """A rating table, the agents of one debate, its winner and domain."""
    agents = draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=6, unique=True))
    domain = draw(st.sampled_from(["tech", "law", OVERALL]))
    seeded = [
        RatingChange(agent=a, domain=d, before=START, after=draw(ratings_values))
        for a in agents
        for d in {domain, OVERALL}
        if draw(st.booleans())
    ]
    return Ratings().apply(seeded), agents, draw(st.sampled_from(agents)), domain


def change(agent: str, after: float, domain: str = OVERALL) -> RatingChange:
    return RatingChange(agent=agent, domain=domain, before=START, after=after)


# --- the Ratings value ----------------------------------------------------------------------


def test_unknown_agents_start_at_the_default() -> None:
    assert Ratings().rating("nobody") == START
    assert Ratings().rating("nobody", "tech") == START


def test_apply_adds_deltas_and_counts_games_without_mutating() -> None:
    empty = Ratings()
    once = empty.apply([change("ann", 1516.0, "tech"), change("ann", 1510.0)])
    twice = once.apply([change("ann", 1530.0, "tech")])  # +30 from a stale `before` of 1500
    assert empty == Ratings()
    assert once.rating("ann", "tech") == 1516.0
    assert once.rating("ann") == 1510.0
    assert twice.rating("ann", "tech") == 1546.0
    assert twice.games == {"tech": {"ann": 2}, OVERALL: {"ann": 1}}
    assert once.games == {"tech": {"ann": 1}, OVERALL: {"ann": 1}}


@given(
    batches=st.lists(
        st.lists(
            st.builds(
                change,
                st.sampled_from(NAMES),
                ratings_values,
                st.sampled_from(["tech", OVERALL]),
            ),
            max_size=5,
        ),
        max_size=5,
    )
)
def test_apply_folding_equals_sequential_application(batches: list[list[RatingChange]]) -> None:
    folded = Ratings().apply([c for batch in batches for c in batch])
    sequential = Ratings()
    for batch in batches:
        sequential = sequential.apply(batch)
    assert folded == sequential


# --- ELO ------------------------------------------------------------------------------------


def test_expected_score() -> None:
    assert expected(1500, 1500) == 0.5
    assert expected(1900, 1500) == pytest.approx(10 / 11)
    assert expected(1500, 1900) + expected(1900, 1500) == pytest.approx(1.0)


def test_no_winner_means_no_change() -> None:
    assert debate_changes(Ratings(), ["ann", "bob"], None, "tech") == []


def test_two_equal_agents() -> None:
    changes = debate_changes(Ratings(), ["bob", "ann"], "ann", "tech", {"ann": 0.04})
    assert changes == [
        RatingChange(agent="ann", domain="tech", before=1500.0, after=1516.0, brier=0.04),
        RatingChange(agent="bob", domain="tech", before=1500.0, after=1484.0),
        RatingChange(agent="ann", domain=OVERALL, before=1500.0, after=1516.0, brier=0.04),
        RatingChange(agent="bob", domain=OVERALL, before=1500.0, after=1484.0),
    ]


def test_three_equal_agents_others_draw_among_themselves() -> None:
    changes = debate_changes(Ratings(), ["ann", "bob", "cy"], "bob", OVERALL)
    assert [(c.agent, c.domain, c.after) for c in changes] == [
        ("ann", OVERALL, 1484.0),
        ("bob", OVERALL, 1532.0),
        ("cy", OVERALL, 1484.0),
    ]


def test_each_domain_uses_its_own_ratings() -> None:
    ratings = Ratings().apply([change("ann", 1700.0, "tech")])
    changes = debate_changes(ratings, ["ann", "bob"], "bob", "tech")
    tech = {c.agent: c for c in changes if c.domain == "tech"}
    overall = {c.agent: c for c in changes if c.domain == OVERALL}
    assert tech["ann"].before == 1700.0
    assert overall["ann"].before == START
    assert tech["bob"].after - tech["bob"].before > overall["bob"].after - overall["bob"].before


def test_a_winner_outside_the_debate_is_rejected() -> None:
    with pytest.raises(ValueError, match="not among"):
        debate_changes(Ratings(), ["ann", "bob"], "zed", "tech")


def test_replaying_changes_moves_the_ratings() -> None:
    ratings = Ratings()
    for winner in ["ann", "ann", "bob"]:
        ratings = ratings.apply(debate_changes(ratings, ["ann", "bob"], winner, "tech"))
    assert ratings.games["tech"] == {"ann": 3, "bob": 3}
    assert ratings.rating("ann", "tech") > START > ratings.rating("bob", "tech")
    assert ratings.rating("ann") == ratings.rating("ann", "tech")


@given(debates())
def test_zero_sum_per_domain(debate: tuple[Ratings, list[str], str, str]) -> None:
    ratings, agents, winner, domain = debate
    changes = debate_changes(ratings, agents, winner, domain)
    domains = {domain, OVERALL}
    assert len(changes) == len(agents) * len(domains)
    for d in domains:
        deltas = [c.after - c.before for c in changes if c.domain == d]
        # before and after are each rounded to 2 decimals: at most 0.01 per agent of drift.
        assert abs(sum(deltas)) <= 0.01 * len(deltas) + 1e-9


@given(debates(), st.data())
def test_the_order_of_agents_does_not_matter(
    debate: tuple[Ratings, list[str], str, str], data: st.DataObject
) -> None:
    ratings, agents, winner, domain = debate
    shuffled = data.draw(st.permutations(agents))
    assert debate_changes(ratings, shuffled, winner, domain) == debate_changes(
        ratings, agents, winner, domain
    )


@given(debates())
def test_the_winner_never_loses(debate: tuple[Ratings, list[str], str, str]) -> None:
    ratings, agents, winner, domain = debate
    for c in debate_changes(ratings, agents, winner, domain):
        if c.agent == winner:
            # Strictly positive before rounding; a heavy favourite's gain can round to 0.00.
            assert c.after >= c.before


@given(n=st.integers(min_value=2, max_value=6), winner_index=st.integers(0, 5), data=st.data())
def test_with_equal_ratings_winner_gains_and_losers_lose(
    n: int, winner_index: int, data: st.DataObject
) -> None:
    agents = data.draw(st.permutations(NAMES[:n]))
    winner = agents[winner_index % n]
    for c in debate_changes(Ratings(), agents, winner, "tech"):
        if c.agent == winner:
            assert c.after == START + 16.0 * (n - 1)
        else:
            assert c.after == START - 16.0


# --- weights and calibration ----------------------------------------------------------------


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_vote_weight_is_bounded(rating: float) -> None:
    assert 0.5 <= vote_weight(rating) <= 2.0


def test_vote_weight_values() -> None:
    assert vote_weight(START) == 1.0
    assert vote_weight(2000.0) == pytest.approx(1.3)
    assert vote_weight(1000.0) == pytest.approx(0.7)
    assert vote_weight(9000.0) == 2.0
    assert vote_weight(0.0) == 0.5


def test_brier() -> None:
    assert brier(0.9, True) == pytest.approx(0.01)
    assert brier(0.9, False) == pytest.approx(0.81)
    assert brier(1.5, True) == 0.0  # clamped to [0, 1]
    assert brier(-1.0, False) == 0.0


def test_calibration() -> None:
    assert calibration([]) is None
    assert calibration([0.1, 0.3]) == pytest.approx(0.2)


def test_leaderboard_best_first_ties_by_name() -> None:
    ratings = Ratings().apply(
        [change("cy", 1600.0), change("bob", 1550.0), change("ann", 1550.0), change("cy", 1620.0)]
    )
    # cy: +100 then +120 (deltas add up, so concurrent debates never lose a change)
    assert leaderboard(ratings) == [("cy", 1720.0, 2), ("ann", 1550.0, 1), ("bob", 1550.0, 1)]
    assert leaderboard(ratings, "tech") == []
