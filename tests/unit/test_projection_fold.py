"""The rebuild's fold applies a stream the way the live projector does, and its CLI parses."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from aragora.cli.main import build_parser
from aragora.contracts import codec
from aragora.contracts.messages import DebateCompleted, DebateEvent
from aragora.gateway import projection
from aragora.gateway.rebuild import Fold, projection_names
from tests.integration.test_readmodel import debate_events


def encoded(events: list[DebateEvent]) -> list[bytes]:
    return [codec.encode(e) for e in events]


def live_fold(events: list[DebateEvent]) -> projection.View:
    view = None
    for event in events:
        view = projection.apply(view, event)
    assert view is not None
    return view


def test_a_stream_in_order_folds_to_the_live_view_with_every_event() -> None:
    events = debate_events()
    fold = Fold()
    for i, data in enumerate(encoded(events), start=1):
        fold.add(i * 2, data)  # other subjects' messages sit between them

    debate_id = events[0].debate_id
    assert fold.views == {debate_id: live_fold(events)}
    assert [(d, s) for d, s, _, _ in fold.events] == [(debate_id, e.seq) for e in events]
    assert [body for *_, body in fold.events] == [codec.encode(e).decode() for e in events]
    assert fold.completions == [events[-1]] and isinstance(events[-1], DebateCompleted)
    assert (fold.position, fold.messages, fold.held, fold.broken) == (
        2 * len(events),
        len(events),
        {},
        set(),
    )


def test_duplicates_are_dropped_and_early_events_held_until_their_predecessor() -> None:
    events = debate_events()
    other = debate_events()
    data = encoded(events)
    # 1 2 4 (held) 1 (dup) other-1 3 (releases 4) 2 (dup) 5..
    order = [data[0], data[1], data[3], data[0], codec.encode(other[0]), data[2], data[1]]
    order += data[4:]
    fold = Fold()
    for i, message in enumerate(order, start=1):
        fold.add(i, message)

    assert fold.views[events[0].debate_id] == live_fold(events)
    assert fold.views[other[0].debate_id] == live_fold(other[:1])
    seqs = [s for d, s, _, _ in fold.events if d == events[0].debate_id]
    assert seqs == list(range(1, len(events) + 1))
    assert fold.held == {} and fold.messages == len(order)


def test_a_gap_never_filled_stays_held_and_undecodable_messages_are_counted() -> None:
    events = debate_events()
    fold = Fold()
    fold.add(1, codec.encode(events[0]))
    fold.add(2, codec.encode(events[2]))
    fold.add(3, b'{"type": "debate.nonsense"}')
    debate_id = events[0].debate_id
    assert fold.views[debate_id]["last_seq"] == 1
    assert list(fold.held[debate_id]) == [3]
    assert (fold.undecodable, fold.position, len(fold.events)) == (1, 3, 1)


def test_a_debate_whose_first_event_is_not_created_is_not_applied() -> None:
    events = debate_events()
    stray = msgspec.structs.replace(events[1], seq=1)  # seq 1 but not debate.created
    fold = Fold()
    fold.add(1, codec.encode(stray))
    fold.add(2, codec.encode(events[2]))
    assert fold.views == {} and fold.broken == {stray.debate_id} and fold.held == {}
    assert fold.events == [] and fold.messages == 2


def test_projection_names() -> None:
    assert projection_names("all") == ("debates", "ratings")
    assert projection_names("ratings") == ("ratings",)
    with pytest.raises(ValueError, match="unknown projection"):
        projection_names(str(uuid.uuid4()))


def test_cli_parses_projections_rebuild_and_status() -> None:
    parser = build_parser()
    args = parser.parse_args(["projections", "rebuild"])
    assert args.name == "all" and args.func.__name__ == "run_rebuild"
    assert parser.parse_args(["projections", "rebuild", "ratings"]).name == "ratings"
    assert parser.parse_args(["projections", "status"]).func.__name__ == "run_status"
    with pytest.raises(SystemExit):
        parser.parse_args(["projections", "rebuild", "leaderboards"])
    with pytest.raises(SystemExit):
        parser.parse_args(["projections"])
