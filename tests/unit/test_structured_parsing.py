"""Parsing structured answers per phase: where the JSON hides, lenient keys, clamped scales."""

from __future__ import annotations

from typing import Any

import pytest

from aragora.agent_runner.providers.parsing import (
    AnswerError,
    parse_answer,
    parse_ballot,
    parse_critique,
    parse_revision,
    render_critiques,
)
from aragora.agent_runner.providers.readers import confidence, json_objects, severity
from aragora.contracts.messages import Critique, PeerMessage, RunTurn
from tests.factories import run_turn

CANDS = ["Alice", "bob"]


def ballot(text: str, phase: str = "vote", **kw: Any) -> Any:
    return parse_ballot(text, run_turn(phase=phase, candidates=CANDS, **kw))


# --- where the JSON is ------------------------------------------------------------------------


def test_json_objects_in_fences_prose_and_with_trailing_commas() -> None:
    assert json_objects('x ```json\n{"a": 1}\n``` y')[0] == {"a": 1}
    assert json_objects('I think {"a": 1} and {"b": [2]} end') == [{"a": 1}, {"b": [2]}]
    assert json_objects('{"a": [1, 2,], "b": 3,}') == [{"a": [1, 2], "b": 3}]
    assert json_objects('[{"a": 1}, {"b": 2}]') == [{"a": 1}, {"b": 2}]
    assert json_objects("no json {here") == []


# --- ballots (vote and judge) -----------------------------------------------------------------


@pytest.mark.parametrize("phase", ["vote", "judge"])
def test_ballot_plain_json(phase: str) -> None:
    parsed = ballot('{"choice": "bob", "confidence": 0.7, "reasoning": "clear"}', phase)
    assert parsed.vote is not None
    vote = parsed.vote
    assert (vote.choice, vote.confidence, vote.reasoning, vote.conditions) == (
        "bob",
        0.7,
        "clear",
        "",
    )
    assert vote.continue_debate is None and parsed.continue_debate is None
    assert parsed.content == "Choice: bob (confidence 0.70). clear"


def test_ballot_in_fence_within_prose_case_insensitive() -> None:
    text = 'I think so.\n```json\n{"choice": " ALICE ", "confidence": 0.9}\n```\nThanks.'
    vote = ballot(text).vote
    assert (vote.choice, vote.confidence) == ("Alice", 0.9)


def test_ballot_lenient_keys_and_prose_name() -> None:
    vote = ballot('Scores {"x": 1} then {"Winner": "bob\'s answer", "Confidence": "80%"}').vote
    assert (vote.choice, vote.confidence) == ("bob", 0.8)


def test_ballot_conditions_and_continue() -> None:
    parsed = ballot(
        '{"choice": "bob", "confidence": 0.6, "conditions": ["staged", "reviewed"],'
        ' "continue": "STOP"}',
        ask_continue=True,
    )
    assert parsed.vote.conditions == "staged; reviewed"
    assert parsed.vote.continue_debate is False and parsed.continue_debate is False
    assert parsed.content.endswith("Conditions: staged; reviewed")


def test_ballot_missing_continue_when_asked_is_an_error() -> None:
    with pytest.raises(AnswerError, match="continue"):
        ballot('{"choice": "bob"}', ask_continue=True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1.7", 1.0), ("-2", 0.0), ('"high"', 0.5), ("null", 0.5), ("true", 0.5), ('"3/4"', 0.75)],
)
def test_confidence_clamped_or_defaulted(raw: str, expected: float) -> None:
    assert ballot(f'{{"choice": "bob", "confidence": {raw}}}').vote.confidence == expected
    assert confidence(float("nan")) == 0.5


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "no JSON object"),
        ("I vote for bob", "no JSON object"),
        ('{"choice": "carol", "confidence": 0.9}', "not one of"),
        ('{"choice": 3}', "not one of"),
        ('{"choice": "bob"', "no JSON object"),
        ("[1, 2]", "no JSON object"),
        ('{"reasoning": "bob is best"}', "missing"),
    ],
)
def test_invalid_ballot_raises_retryable_error(text: str, error: str) -> None:
    with pytest.raises(AnswerError, match=error) as info:
        ballot(text)
    assert info.value.retryable


def test_ballot_without_candidates_is_not_retryable() -> None:
    with pytest.raises(AnswerError) as info:
        parse_ballot('{"choice": "bob"}', run_turn(phase="vote", candidates=[]))
    assert not info.value.retryable


# --- critiques --------------------------------------------------------------------------------


def critique_turn(**kw: Any) -> RunTurn:
    return run_turn(phase="critique", role="critic", targets=["bob", "carol"], **kw)


def test_critique_shape_and_rendering() -> None:
    text = (
        '{"critiques": [{"target": "carol", "issues": ["thin"], "suggestions": ["cite"], '
        '"severity": 7}, {"target": "bob", "issues": "vague", "severity": 2}]}'
    )
    parsed = parse_critique(text, critique_turn())
    assert parsed.critiques == [
        Critique(target="bob", issues=["vague"], suggestions=[], severity=2.0),
        Critique(target="carol", issues=["thin"], suggestions=["cite"], severity=7.0),
    ]  # in targets order
    assert parsed.content == (
        "bob (severity 2/10): issues: vague.\ncarol (severity 7/10): issues: thin. "
        "Suggestions: cite."
    )


def test_critique_in_fence_lenient_keys_unknown_targets_dropped() -> None:
    text = (
        "Here you go:\n```json\n"
        '{"Reviews": [{"Agent": "BOB", "weaknesses": ["a", "b"], "improvements": "c", '
        '"score": "8/10"}, {"peer": "mallory", "issues": ["x"]}]}\n```'
    )
    parsed = parse_critique(text, critique_turn())
    assert [c.target for c in parsed.critiques] == ["bob"]
    assert parsed.critiques[0].issues == ["a", "b"]
    assert parsed.critiques[0].suggestions == ["c"]
    assert parsed.critiques[0].severity == 8.0


def test_critique_bare_objects_and_keyed_by_target() -> None:
    bare = '[{"target": "bob", "issues": ["a"]}, {"target": "carol", "issues": ["b"]}]'
    assert len(parse_critique(bare, critique_turn()).critiques) == 2
    keyed = '{"critiques": {"carol": {"issues": ["b"], "severity": 3}}}'
    assert parse_critique(keyed, critique_turn()).critiques == [
        Critique(target="carol", issues=["b"], severity=3.0)
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (15, 10.0),
        (-3, 0.0),
        (0.7, 0.7),  # the scale is 0-10: a bare 0.7 is mild, never rescaled to 7
        ('"9"', 9.0),
        ('"70%"', 7.0),
        ('"3/5"', 6.0),
        ('"critical"', 10.0),
        ('"low"', 2.0),
        ("null", 5.0),
        ('"very bad"', 5.0),
        ("true", 5.0),
    ],
)
def test_severity_is_on_a_0_to_10_scale_and_clamped(raw: object, expected: float) -> None:
    text = f'{{"critiques": [{{"target": "bob", "issues": ["x"], "severity": {raw}}}]}}'
    assert parse_critique(text, critique_turn()).critiques[0].severity == expected
    assert severity(float("inf")) == 5.0


def test_critique_targets_default_to_context_peers() -> None:
    context = [PeerMessage(agent="dave", round=1, phase="propose", content="p")]
    command = run_turn(phase="critique", context=context)
    assert parse_critique('{"target": "dave", "issues": []}', command).critiques[0].target == (
        "dave"
    )


def test_critique_with_no_targets_accepts_an_empty_list() -> None:
    parsed = parse_critique('{"critiques": []}', run_turn(phase="critique"))
    assert parsed.critiques == [] and parsed.content == render_critiques([])


@pytest.mark.parametrize(
    "text",
    ["bob is weak", '{"critiques": []}', '{"critiques": [{"target": "zed", "issues": ["x"]}]}'],
)
def test_critique_naming_no_target_is_an_error(text: str) -> None:
    with pytest.raises(AnswerError):
        parse_critique(text, critique_turn())


# --- revisions --------------------------------------------------------------------------------


def test_revision_text_and_continue() -> None:
    parsed = parse_revision(
        '{"revised": " New text. ", "continue": true}', run_turn(phase="revise")
    )
    assert (parsed.content, parsed.continue_debate) == ("New text.", None)  # not asked
    asked = run_turn(phase="revise", ask_continue=True)
    assert parse_revision('{"revised": "x", "continue": false}', asked).continue_debate is False
    assert parse_revision('{"Revision": "x", "decision": "CONTINUE"}', asked).continue_debate
    assert parse_revision('{"revised": "x", "stop": true}', asked).continue_debate is False


@pytest.mark.parametrize(
    ("text", "asked", "error"),
    [
        ("Just my revised view in prose.", False, "no JSON object"),
        ('{"revised": ""}', False, "revised"),
        ('{"revised": "x"}', True, "continue"),
        ('{"revised": "x", "continue": "maybe"}', True, "continue"),
    ],
)
def test_revision_errors(text: str, asked: bool, error: str) -> None:
    with pytest.raises(AnswerError, match=error):
        parse_revision(text, run_turn(phase="revise", ask_continue=asked))


# --- plain-text phases ------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["propose", "synthesis"])
def test_plain_phases_pass_text_through(phase: str) -> None:
    parsed = parse_answer("  A plain answer {not json}.  ", run_turn(phase=phase))
    assert parsed.content == "A plain answer {not json}." and parsed.vote is None
    with pytest.raises(AnswerError):
        parse_answer("   ", run_turn(phase=phase))


def test_parse_answer_dispatches_by_phase() -> None:
    text = '{"choice": "bob", "revised": "r", "critiques": [{"target": "bob"}]}'
    assert parse_answer(text, run_turn(phase="vote", candidates=CANDS)).vote is not None
    assert parse_answer(text, run_turn(phase="judge", candidates=CANDS)).vote is not None
    assert parse_answer(text, run_turn(phase="revise")).content == "r"
    assert parse_answer(text, run_turn(phase="critique", targets=["bob"])).critiques
