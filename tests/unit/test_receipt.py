"""Decision receipts: verdicts from event sequences, provenance and hashing."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import pytest

from aragora.contracts.messages import DebateCompleted, DebateFailed, TurnCompleted, TurnFailed
from aragora.contracts.receipt import (
    DebateNotFinished,
    Receipt,
    build_receipt,
    canonical_json,
    provenance_root,
)
from aragora.contracts.values import AgentFailure, Protocol, Vote
from tests.receipt_fixtures import (
    AGENTS,
    DEBATE,
    ISSUED,
    Log,
    complete,
    consensus,
    debate,
    make_proof,
    receipt_of,
)

# --- verdicts --------------------------------------------------------------------------------


def test_consensus_with_high_confidence_passes() -> None:
    events = complete(debate(), consensus(), proof=make_proof())
    r = receipt_of(events)
    assert (r.status, r.verdict) == ("consensus", "PASS")
    assert "consensus on b" in r.verdict_reason
    assert r.debate_id == DEBATE and r.topic == "Tabs or spaces?" and r.agents == AGENTS
    assert r.domain == "general"
    assert r.protocol == Protocol(rounds=1, consensus="majority", threshold=0.6)
    assert r.consensus is not None and r.consensus.winner == "b"
    assert r.proof == make_proof()
    assert r.issued_at == ISSUED.isoformat()
    assert r.version == "1"


def test_low_confidence_consensus_is_conditional() -> None:
    r = receipt_of(complete(debate(), consensus(confidence=0.55)))
    assert r.verdict == "CONDITIONAL"
    assert "0.55" in r.verdict_reason and "0.70" in r.verdict_reason


def test_no_consensus_fails() -> None:
    c = consensus(reached=False, supporters=["b"])
    r = receipt_of(complete(debate(voters={"a": "a", "b": "b", "c": "c"}), c))
    assert (r.status, r.verdict) == ("no_consensus", "FAIL")
    assert r.verdict_reason.startswith("no consensus")


@pytest.mark.parametrize("status", ["failed", "timeout", "cancelled"])
def test_failed_debates_fail(status: str) -> None:
    log = debate(failed_voters=tuple(AGENTS))
    failures = [
        AgentFailure(agent=a, turn_id=f"vote-{a}", round=1, phase="vote", reason="timeout")
        for a in AGENTS
    ]
    log.add(DebateFailed, status=status, reason="no agent cast a valid vote", failures=failures)
    r = receipt_of(log.events)
    assert (r.status, r.verdict) == (status, "FAIL")
    assert status in r.verdict_reason and "no agent cast a valid vote" in r.verdict_reason
    assert r.consensus is None and r.proof is None and r.failures == failures


def test_unstructured_winning_answer_fails() -> None:
    log = debate(answer_fields={"structured": False, "parse_error": "no JSON"})
    r = receipt_of(complete(log, consensus()))
    assert r.verdict == "FAIL"
    assert "unstructured" in r.verdict_reason


def test_winning_answer_from_a_failed_turn_fails() -> None:
    # b's proposal failed; the "answer" is a placeholder no completed turn produced.
    log = Log()
    log.phase("propose")
    log.turn("propose", "a", "answer of a")
    log.fail("propose", "b")
    log.turn("propose", "c", "answer of c")
    log.phase("vote")
    for agent in AGENTS:
        log.turn("vote", agent, "vote b", vote=Vote(choice="b", confidence=0.9))
    r = receipt_of(complete(log, consensus(answer="[b failed: provider_error]")))
    assert r.verdict == "FAIL"
    assert "does not come from any completed turn of b" in r.verdict_reason


def test_votes_from_failed_turns_fail() -> None:
    log = debate(failed_voters=("a", "c"))
    r = receipt_of(complete(log, consensus()))  # the tally wrongly counts a and c
    assert r.verdict == "FAIL"
    assert "a, c" in r.verdict_reason and "not a completed, structured ballot" in r.verdict_reason


def test_unparsable_votes_fail() -> None:
    log = debate(unstructured_voters=("a",))
    r = receipt_of(complete(log, consensus()))
    assert r.verdict == "FAIL"
    assert "from a is not" in r.verdict_reason


def test_a_later_failed_vote_replaces_an_earlier_one() -> None:
    log = debate()
    log.fail("vote", "c")  # a retried vote turn that ended in an error
    r = receipt_of(complete(log, consensus()))
    assert r.verdict == "FAIL" and "from c" in r.verdict_reason


def test_quorum_must_be_met_by_valid_ballots() -> None:
    log = debate(failed_voters=("c",))
    ok = receipt_of(complete(debate(failed_voters=("c",)), consensus(supporters=["a", "b"])))
    assert ok.verdict == "PASS"
    r = receipt_of(complete(log, consensus(supporters=["a", "b"], quorum=3)))
    assert r.verdict == "FAIL" and "quorum of 3" in r.verdict_reason


def test_supporters_of_a_merged_answer_pass_when_their_ballots_are_valid() -> None:
    # The tally merged c's near-identical answer into b's: c's vote for c supports b.
    log = debate(voters={"a": "b", "b": "b", "c": "c"})
    assert receipt_of(complete(log, consensus())).verdict == "PASS"


def test_a_judge_ruling_must_be_a_valid_ballot_for_the_winner() -> None:
    def judged(**fields: Any) -> Receipt:
        log = debate(voters={"a": "a", "b": "b", "c": "c"})
        log.phase("judge", ["c"])
        log.turn("judge", "c", "b wins", vote=Vote(choice="b", confidence=0.9), **fields)
        return receipt_of(complete(log, consensus(supporters=["b"], method="judge")))

    assert judged().verdict == "PASS"
    unstructured = judged(structured=False)
    assert unstructured.verdict == "FAIL" and "judge's ruling" in unstructured.verdict_reason
    log = debate(voters={"a": "a", "b": "b", "c": "c"})
    log.phase("judge", ["c"])
    log.fail("judge", "c")
    r = receipt_of(complete(log, consensus(supporters=[], method="judge")))
    assert r.verdict == "FAIL" and "no ballot supports the winner b" in r.verdict_reason


def test_tampered_proof_fails() -> None:
    proof = msgspec.structs.replace(make_proof(), claim="something else")
    r = receipt_of(complete(debate(), consensus(), proof=proof))
    assert r.verdict == "FAIL" and "checksum" in r.verdict_reason


def test_consensus_status_without_a_winner_fails() -> None:
    r = receipt_of(complete(debate(), consensus(winner=None, answer=None)))
    assert r.verdict == "FAIL"


def test_no_terminal_event_is_an_error() -> None:
    with pytest.raises(ValueError, match="has not ended"):
        build_receipt(debate().events, ISSUED)
    with pytest.raises(ValueError, match=r"debate\.created"):
        build_receipt(debate().events[1:], ISSUED)


def test_receipts_are_deterministic_and_ignore_order_and_duplicates() -> None:
    events = complete(debate(), consensus())
    shuffled = [*reversed(events), events[3]]
    assert build_receipt(shuffled, ISSUED) == build_receipt(events, ISSUED)


# --- provenance ------------------------------------------------------------------------------


def test_provenance_lists_turns_and_the_terminal_event_in_seq_order() -> None:
    events = complete(debate(failed_voters=("c",)), consensus(supporters=["a", "b"]))
    r = receipt_of(events)
    expected = [e for e in events if isinstance(e, TurnCompleted | TurnFailed | DebateCompleted)]
    assert [p.seq for p in r.provenance] == [e.seq for e in expected]
    assert [p.type for p in r.provenance][-2:] == ["debate.turn_failed", "debate.completed"]
    assert r.provenance[0].agent == "a" and r.provenance[-1].agent is None
    for entry, event in zip(r.provenance, expected, strict=True):
        assert entry.sha256 == hashlib.sha256(canonical_json(event)).hexdigest()

    root = ""
    for entry in r.provenance:
        root = hashlib.sha256((root + entry.sha256).encode()).hexdigest()
    assert r.provenance_root == root == provenance_root(r.provenance)


def test_changing_any_event_changes_the_root() -> None:
    events = complete(debate(), consensus())
    base = receipt_of(events).provenance_root
    for i, event in enumerate(events):
        if isinstance(event, TurnCompleted):
            changed = msgspec.structs.replace(event, content=event.content + ".")
            assert receipt_of([*events[:i], changed, *events[i + 1 :]]).provenance_root != base


def test_input_hash_covers_topic_agents_protocol_and_domain() -> None:
    a = receipt_of(complete(debate(), consensus()))
    b = receipt_of(complete(debate(topic="Tabs or spaces??"), consensus()))
    assert a.input_hash != b.input_hash
    expected = {
        "agents": AGENTS,
        "domain": "general",
        "protocol": msgspec.to_builtins(a.protocol),
        "topic": "Tabs or spaces?",
    }
    assert a.input_hash == hashlib.sha256(canonical_json(expected)).hexdigest()


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["é", 0.5]}) == '{"a":["é",0.5],"b":1}'.encode()
    with pytest.raises(ValueError, match="JSON compliant"):
        canonical_json({"x": float("nan")})


def test_an_unfinished_debate_raises_debate_not_finished() -> None:
    with pytest.raises(DebateNotFinished):
        build_receipt(debate().events, ISSUED)
