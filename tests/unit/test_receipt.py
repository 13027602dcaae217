"""Decision receipts: verdicts from event sequences, Ed25519 signing, tamper detection."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aragora.contracts.messages import (
    DebateCompleted,
    DebateCreated,
    DebateEvent,
    DebateFailed,
    PhaseStarted,
    TurnCompleted,
    TurnFailed,
)
from aragora.contracts.receipt import (
    DebateNotFinished,
    ProvenanceEntry,
    Receipt,
    SignedReceipt,
    build_receipt,
    canonical_json,
    proof_checksum,
    provenance_root,
    public_key_of,
    render_html,
    render_markdown,
    serialize_signed,
    sign_receipt,
    verify_receipt,
)
from aragora.contracts.values import (
    AgentFailure,
    Consensus,
    ConsensusProof,
    Dissent,
    Protocol,
    TurnSpec,
    Vote,
)
from aragora.runtime.settings import SettingsError, load_settings
from aragora.runtime.signing import KEY_FILE_NAME, load_signing_seed

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
ISSUED = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)
DEBATE = "d-1"
AGENTS = ["a", "b", "c"]
SEED = bytes(range(32))
OTHER_SEED = bytes(range(1, 33))


class Log:
    """Builds one debate's events with contiguous seqs."""

    def __init__(self, topic: str = "Tabs or spaces?", protocol: Protocol | None = None) -> None:
        self.events: list[DebateEvent] = []
        self.add(
            DebateCreated,
            topic=topic,
            agents=AGENTS,
            rounds=1,
            consensus="majority",
            threshold=0.6,
            protocol=protocol,
        )

    def add(self, kind: type[DebateEvent], **fields: Any) -> DebateEvent:
        seq = len(self.events) + 1
        event = kind(
            event_id=f"e{seq}",
            occurred_at=T0,
            correlation_id="corr-1",
            debate_id=DEBATE,
            seq=seq,
            **fields,
        )
        self.events.append(event)
        return event

    def phase(self, phase: str, agents: list[str] = AGENTS) -> None:
        turns = [TurnSpec(turn_id=f"{phase}-{a}", agent=a, stance="neutral") for a in agents]
        self.add(PhaseStarted, round=1, phase=phase, turns=turns)

    def turn(self, phase: str, agent: str, content: str, **fields: Any) -> None:
        self.add(
            TurnCompleted,
            turn_id=f"{phase}-{agent}",
            round=1,
            phase=phase,
            agent=agent,
            content=content,
            **fields,
        )

    def fail(self, phase: str, agent: str) -> None:
        self.add(
            TurnFailed,
            turn_id=f"{phase}-{agent}",
            round=1,
            phase=phase,
            agent=agent,
            reason="provider_error",
            detail="boom",
        )


def consensus(
    *,
    confidence: float = 0.85,
    supporters: list[str] = AGENTS,
    answer: str | None = "answer of b",
    quorum: int = 0,
    reached: bool = True,
    winner: str | None = "b",
    method: str = "majority",
) -> Consensus:
    return Consensus(
        reached=reached,
        agreement_ratio=len(supporters) / len(AGENTS),
        confidence=confidence,
        threshold=0.6,
        winner=winner,
        answer=answer,
        supporters=supporters,
        dissenters=[a for a in AGENTS if a not in supporters],
        valid_votes=len(supporters),
        quorum=quorum,
        method=method,
    )


def make_proof(answer: str = "answer of b", winner: str = "b") -> ConsensusProof:
    proof = ConsensusProof(
        claim=answer,
        winner=winner,
        positions={"a": "AGREE", "b": "AGREE", "c": "DISAGREE"},
        dissent=[Dissent(agent="c", choice="a", reasons=["<b>bold</b> claim"])],
        tensions=[],
        agreement_ratio=2 / 3,
        confidence=0.85,
        method="majority",
        checksum="",
    )
    return msgspec.structs.replace(proof, checksum=proof_checksum(proof))


def debate(
    *,
    answer_fields: dict[str, Any] | None = None,
    voters: dict[str, str] | None = None,
    failed_voters: tuple[str, ...] = (),
    unstructured_voters: tuple[str, ...] = (),
    topic: str = "Tabs or spaces?",
) -> Log:
    """Propose (b's answer per ``answer_fields``) then a vote; no terminal event yet."""
    log = Log(topic=topic)
    log.phase("propose")
    for agent in AGENTS:
        fields = (answer_fields or {}) if agent == "b" else {}
        log.turn("propose", agent, f"answer of {agent}", **fields)
    log.phase("vote")
    for agent, choice in (voters or dict.fromkeys(AGENTS, "b")).items():
        if agent in failed_voters:
            log.fail("vote", agent)
            continue
        log.turn(
            "vote",
            agent,
            f"I vote {choice}",
            vote=Vote(choice=choice, confidence=0.85),
            structured=agent not in unstructured_voters,
        )
    return log


def complete(log: Log, c: Consensus, **fields: Any) -> list[DebateEvent]:
    status = "consensus" if c.reached else "no_consensus"
    log.add(DebateCompleted, status=status, consensus=c, **fields)
    return log.events


def receipt_of(events: list[DebateEvent]) -> Receipt:
    return build_receipt(events, ISSUED)


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


# --- signing and verifying -------------------------------------------------------------------


def signed_pass(topic: str = "Tabs or spaces?") -> SignedReceipt:
    events = complete(debate(topic=topic), consensus(), proof=make_proof())
    return sign_receipt(receipt_of(events), SEED)


def test_sign_and_verify_round_trip() -> None:
    signed = signed_pass()
    assert signed.algorithm == "Ed25519"
    raw_key = base64.b64decode(signed.public_key)
    assert len(raw_key) == 32 and signed.public_key == public_key_of(SEED)
    assert signed.key_id == hashlib.sha256(raw_key).hexdigest()[:16]
    assert len(base64.b64decode(signed.signature)) == 64

    data = serialize_signed(signed)
    result = verify_receipt(data)
    assert result.ok, result.problems
    assert result.problems == [] and result.signed == signed
    assert verify_receipt(data + b"\n").ok  # as saved by an editor
    assert verify_receipt(data, trusted_public_key=signed.public_key).ok


def test_signatures_are_deterministic_and_the_key_matters() -> None:
    signed = signed_pass()
    assert sign_receipt(signed.receipt, SEED) == signed
    other = sign_receipt(signed.receipt, OTHER_SEED)
    assert other.signature != signed.signature and other.key_id != signed.key_id
    with pytest.raises(ValueError, match="32 bytes"):
        sign_receipt(signed.receipt, b"short")


def test_a_trusted_key_mismatch_fails() -> None:
    data = serialize_signed(signed_pass())
    result = verify_receipt(data, trusted_public_key=public_key_of(OTHER_SEED))
    assert not result.ok
    assert any("different key" in p for p in result.problems)
    bad = verify_receipt(data, trusted_public_key="not a key")
    assert not bad.ok and any("trusted public key" in p for p in bad.problems)


def test_a_receipt_re_signed_with_another_key_fails_only_against_the_trusted_key() -> None:
    signed = signed_pass()
    forged = sign_receipt(
        msgspec.structs.replace(signed.receipt, verdict_reason="forged"), OTHER_SEED
    )
    data = serialize_signed(forged)
    assert verify_receipt(data).ok  # self-consistent...
    assert not verify_receipt(data, trusted_public_key=signed.public_key).ok  # ...but not ours


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_flipping_any_single_byte_fails_verification() -> None:
    signed = signed_pass(topic="Should we <script>alert(1)</script> adopt Rust? é")
    data = serialize_signed(signed)
    text = data.decode()
    named = {
        "topic": data.index(b"<script>") + 3,
        "signature": data.index(signed.signature.encode()) + 10,
        "signature end": data.index(signed.signature.encode()) + len(signed.signature) - 3,
        "public key end": data.index(signed.public_key.encode()) + len(signed.public_key) - 2,
        "key id": data.index(signed.key_id.encode()),
        "provenance root": data.index(signed.receipt.provenance_root.encode()) + 5,
        "verdict": data.index(b'"PASS"') + 2,
        "confidence": data.index(b"0.85"),
        "non-ascii": data.index("é".encode()),
        "a key name": data.index(b'"version"') + 2,
        "first": 0,
        "last": len(data) - 1,
    }
    assert text.count("<script>") == 1
    for name, index in named.items():
        result = verify_receipt(flip(data, index))
        assert not result.ok, (name, index)
        assert result.problems, name
    # ... and every other position, each bit pattern tried on a stride through the file.
    for index in range(0, len(data), 7):
        for mask in (0x01, 0x20, 0x80):
            changed = data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]
            assert not verify_receipt(changed).ok, (index, mask)


def test_every_single_bit_flip_of_the_signature_and_key_fails() -> None:
    signed = signed_pass()
    data = serialize_signed(signed)
    for value in (signed.signature, signed.public_key, signed.key_id):
        start = data.index(value.encode())
        for index in range(start, start + len(value)):
            for bit in range(8):
                changed = data[:index] + bytes([data[index] ^ (1 << bit)]) + data[index + 1 :]
                assert not verify_receipt(changed).ok, (value[:8], index, bit)


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"not json", b"[]", b'"x"', b"{}", b"\xff\xfe", b'{"receipt":1}', b"[" * 100_000],
)
def test_malformed_input_is_a_problem_never_an_exception(data: bytes) -> None:
    result = verify_receipt(data)
    assert not result.ok and result.problems and result.signed is None


def test_reformatted_json_is_refused_as_non_canonical() -> None:
    data = serialize_signed(signed_pass())
    pretty = json.dumps(json.loads(data), indent=2, sort_keys=True, ensure_ascii=False).encode()
    result = verify_receipt(pretty)
    assert not result.ok and any("canonical" in p for p in result.problems)


def test_recomputed_hashes_catch_a_receipt_signed_with_wrong_hashes() -> None:
    signed = signed_pass()
    entries = [*signed.receipt.provenance]
    entries[0] = ProvenanceEntry(seq=1, type="debate.turn_completed", agent="a", sha256="0" * 64)
    assert signed.receipt.proof is not None
    bad_proof = msgspec.structs.replace(signed.receipt.proof, claim="edited")
    bad = msgspec.structs.replace(
        signed.receipt, provenance=entries, proof=bad_proof, topic="another topic"
    )
    result = verify_receipt(serialize_signed(sign_receipt(bad, SEED)))
    assert not result.ok
    text = " | ".join(result.problems)
    assert "provenance root" in text and "proof" in text and "input hash" in text


def test_unknown_fields_and_versions_are_refused() -> None:
    signed = signed_pass()
    doc = json.loads(serialize_signed(signed))
    doc["receipt"]["extra"] = "x"
    doc["receipt"]["version"] = "2"
    receipt = doc["receipt"]
    # Re-signed after the edit, so only the content checks can object.
    signature = Ed25519PrivateKey.from_private_bytes(SEED).sign(canonical_json(receipt))
    doc["signature"] = base64.b64encode(signature).decode()
    result = verify_receipt(canonical_json(doc))
    text = " | ".join(result.problems)
    assert not result.ok and "schema" in text and "version" in text


# --- rendering -------------------------------------------------------------------------------

EVIL = '<script>alert("x")</script>'


def evil_receipt() -> SignedReceipt:
    log = Log(topic=f"Topic {EVIL}")
    log.phase("propose")
    log.turn("propose", "a", "answer of a")
    log.turn("propose", "b", f"Answer {EVIL}\nline two [link](javascript:x)")
    log.turn("propose", "c", "answer of c")
    log.phase("vote")
    for agent in AGENTS:
        log.turn("vote", agent, "v", vote=Vote(choice="b", confidence=0.9))
    c = consensus(answer=f"Answer {EVIL}\nline two [link](javascript:x)")
    return sign_receipt(receipt_of(complete(log, c, proof=make_proof(c.answer or ""))), SEED)


def test_markdown_escapes_untrusted_text() -> None:
    signed = evil_receipt()
    assert signed.receipt.verdict == "PASS"
    md = render_markdown(signed)
    assert "<script>" not in md and "</script>" not in md and "<b>" not in md
    assert "&lt;script&gt;" in md
    assert "](javascript" not in md
    assert "PASS" in md and signed.key_id in md and signed.receipt.provenance_root in md


def test_html_is_a_complete_page_escaping_untrusted_text() -> None:
    signed = evil_receipt()
    page = render_html(signed)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page  # the dissent's reason
    assert "Content-Security-Policy" in page
    assert signed.key_id in page and "PASS" in page


# --- the signing key -------------------------------------------------------------------------


def test_the_seed_comes_from_settings_or_a_generated_0600_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seed = bytes(range(32))
    configured = load_settings({"ARAGORA_RECEIPT_SIGNING_KEY": base64.b64encode(seed).decode()})
    assert load_signing_seed(configured) == seed

    settings = load_settings({}, data_dir=tmp_path / "data")
    with caplog.at_level(logging.INFO, logger="aragora.signing"):
        generated = load_signing_seed(settings)
    path = tmp_path / "data" / KEY_FILE_NAME
    assert len(generated) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_seed(settings) == generated  # reused, not regenerated
    [record] = caplog.records
    assert "generated a receipt signing key" in record.getMessage()
    assert str(path) in record.getMessage()
    assert base64.b64encode(generated).decode() not in caplog.text
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


@pytest.mark.parametrize("value", ["not base64!", "c2hvcnQ=", base64.b64encode(bytes(33)).decode()])
def test_a_bad_configured_key_names_the_variable_without_echoing_it(
    value: str, tmp_path: Path
) -> None:
    settings = load_settings({"ARAGORA_RECEIPT_SIGNING_KEY": value}, data_dir=tmp_path)
    with pytest.raises(SettingsError, match="ARAGORA_RECEIPT_SIGNING_KEY") as caught:
        load_signing_seed(settings)
    assert value not in str(caught.value)


def test_a_corrupt_key_file_is_a_settings_error(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE_NAME).write_text("garbage\n")
    with pytest.raises(SettingsError, match=KEY_FILE_NAME):
        load_signing_seed(load_settings({}, data_dir=tmp_path))


def test_an_unfinished_debate_raises_debate_not_finished() -> None:
    with pytest.raises(DebateNotFinished):
        build_receipt(debate().events, ISSUED)
