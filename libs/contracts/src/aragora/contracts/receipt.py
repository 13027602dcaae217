"""Decision receipts: a self-verifying summary of how a debate ended.

A :class:`Receipt` is built from a finished debate's events (pure: no clock, no I/O; the
caller passes ``issued_at``). It states the outcome, a verdict (PASS / CONDITIONAL / FAIL)
with its reason, and a provenance chain: the SHA-256 of every turn's event and of the
terminal event, folded into one root.

This module holds the types, the hashing, the building and the verdict. Signing and
verifying (Ed25519 over canonical JSON) live in :mod:`aragora.contracts.receipt_signing`,
the Markdown and HTML renderings in :mod:`aragora.contracts.receipt_render`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec

from aragora.contracts.messages import (
    DebateCompleted,
    DebateCreated,
    DebateEvent,
    DebateFailed,
    TurnCompleted,
    TurnFailed,
    tag_of,
)
from aragora.contracts.values import (
    AgentFailure,
    Consensus,
    ConsensusProof,
    Phase,
    Protocol,
    TerminalStatus,
)

RECEIPT_VERSION = "1"
ALGORITHM = "Ed25519"
PASS_CONFIDENCE = 0.7
_ANSWER_PHASES = ("propose", "revise")

Verdict = Literal["PASS", "CONDITIONAL", "FAIL"]


class DebateNotFinished(ValueError):
    """The events hold no terminal event (``debate.completed`` / ``debate.failed``) yet."""


class ProvenanceEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded event: its seq, wire type, agent (turns only) and SHA-256 (hex)."""

    seq: int
    type: str
    agent: str | None
    sha256: str


class Substitution(msgspec.Struct, frozen=True, kw_only=True):
    """A turn answered by a fallback agent instead of the debate's agent, and why."""

    agent: str
    served_by: str
    turn_id: str
    round: int
    phase: Phase
    reason: str


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    """What was asked, how it was decided and the hashes that tie it to the event log."""

    version: str = RECEIPT_VERSION
    debate_id: str
    topic: str
    domain: str
    agents: list[str]
    protocol: Protocol
    input_hash: str
    status: TerminalStatus
    verdict: Verdict
    verdict_reason: str
    consensus: Consensus | None
    proof: ConsensusProof | None
    failures: list[AgentFailure]
    provenance: list[ProvenanceEntry]
    provenance_root: str
    issued_at: str
    substitutions: list[Substitution] = []  # turns a fallback agent answered


class SignedReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """A receipt, its Ed25519 signature over ``canonical_json(receipt)`` and the key."""

    receipt: Receipt
    signature: str
    public_key: str
    key_id: str
    algorithm: str = ALGORITHM


class VerifyResult(msgspec.Struct, frozen=True, kw_only=True):
    """``ok`` when no problem was found; ``signed`` is the decoded receipt when readable."""

    ok: bool
    problems: list[str]
    signed: SignedReceipt | None = None


# --- hashing ---------------------------------------------------------------------------------


def canonical_json(obj: Any) -> bytes:
    """Canonical JSON of ``obj`` (Structs, datetimes, ... via ``msgspec.to_builtins``).

    Keys sorted, no whitespace, non-ASCII kept as UTF-8; NaN and infinities are refused
    (ValueError), as they have no JSON form.
    """
    return canonical_dumps(msgspec.to_builtins(obj))


def canonical_dumps(builtins: Any) -> bytes:
    """Canonical JSON of data already made of builtins (dicts, lists, str, numbers, ...)."""
    text = json.dumps(
        builtins, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def proof_checksum(proof: ConsensusProof) -> str:
    """SHA-256 (hex) of the proof's canonical JSON with ``checksum`` set to ``""``."""
    return sha256_hex(canonical_json(msgspec.structs.replace(proof, checksum="")))


def provenance_root(entries: Sequence[ProvenanceEntry]) -> str:
    """Fold the entries' hashes: ``h_0 = ""``, ``h_i = sha256(h_{i-1} + entry.sha256)``."""
    root = ""
    for entry in entries:
        root = sha256_hex((root + entry.sha256).encode())
    return root


def effective_protocol(created: DebateCreated) -> Protocol:
    """The protocol a debate ran by (a v1.0 debate: defaults plus its three fields)."""
    if created.protocol is not None:
        return created.protocol
    return Protocol(rounds=created.rounds, consensus=created.consensus, threshold=created.threshold)


def input_hash(topic: str, agents: Sequence[str], protocol: Protocol, domain: str) -> str:
    """SHA-256 (hex) of the canonical JSON of what the debate was asked to decide."""
    inputs = {"topic": topic, "agents": list(agents), "protocol": protocol, "domain": domain}
    return sha256_hex(canonical_json(inputs))


# --- building --------------------------------------------------------------------------------


def build_receipt(events: Sequence[DebateEvent], issued_at: datetime) -> Receipt:
    """The receipt of a finished debate from its events (any order; duplicates by seq ignored).

    Raises :class:`DebateNotFinished` (a ValueError) when there is no terminal event, and
    ValueError when there is no ``debate.created`` or the events span several debates.
    """
    by_seq: dict[int, DebateEvent] = {}
    for event in events:
        by_seq.setdefault(event.seq, event)
    ordered = [by_seq[seq] for seq in sorted(by_seq)]
    if len({e.debate_id for e in ordered}) > 1:
        raise ValueError("events of more than one debate")
    created = next((e for e in ordered if isinstance(e, DebateCreated)), None)
    if created is None:
        raise ValueError("the events hold no debate.created")
    terminal = next((e for e in ordered if isinstance(e, DebateCompleted | DebateFailed)), None)
    if terminal is None:
        raise DebateNotFinished(f"debate {created.debate_id} has not ended (no terminal event)")
    turns = [
        e for e in ordered if isinstance(e, TurnCompleted | TurnFailed) and e.seq < terminal.seq
    ]
    provenance = [_entry(e, e.agent) for e in turns] + [_entry(terminal, None)]
    protocol = effective_protocol(created)
    verdict, reason = judge(turns, terminal, created.agents)
    completed = terminal if isinstance(terminal, DebateCompleted) else None
    return Receipt(
        debate_id=created.debate_id,
        topic=created.topic,
        domain=created.domain,
        agents=list(created.agents),
        protocol=protocol,
        input_hash=input_hash(created.topic, created.agents, protocol, created.domain),
        status=terminal.status,
        verdict=verdict,
        verdict_reason=reason,
        consensus=completed.consensus if completed else None,
        proof=completed.proof if completed else None,
        failures=list(terminal.failures),
        provenance=provenance,
        provenance_root=provenance_root(provenance),
        issued_at=issued_at.isoformat(),
        substitutions=[
            Substitution(
                agent=e.agent,
                served_by=e.served_by,
                turn_id=e.turn_id,
                round=e.round,
                phase=e.phase,
                reason=e.fallback_reason,
            )
            for e in turns
            if isinstance(e, TurnCompleted) and e.served_by
        ],
    )


def _entry(event: DebateEvent, agent: str | None) -> ProvenanceEntry:
    return ProvenanceEntry(
        seq=event.seq,
        type=tag_of(type(event)),
        agent=agent,
        sha256=sha256_hex(canonical_json(event)),
    )


def judge(
    turns: Sequence[TurnCompleted | TurnFailed],
    terminal: DebateCompleted | DebateFailed,
    agents: Sequence[str],
) -> tuple[Verdict, str]:
    """The verdict and its reason, from the turns (in seq order) and the terminal event.

    PASS needs consensus with confidence >= 0.7 on an answer taken from a completed,
    structured propose/revise turn of the winner, every supporter's ballot a completed,
    structured vote (a judge's ruling too), at least ``quorum`` valid ballots and, when
    there is a proof, a matching checksum and winner. Consensus that passes those
    checks but with lower confidence is CONDITIONAL; everything else is FAIL.
    """
    if isinstance(terminal, DebateFailed):
        return "FAIL", f"the debate ended with status {terminal.status}: {terminal.reason}"
    c = terminal.consensus
    if terminal.status != "consensus":
        return "FAIL", _no_consensus_reason(c)
    if not c.reached or c.winner is None:
        return "FAIL", "the status says consensus but the tally reached none or has no winner"
    problem = _answer_problem(turns, c) or _ballot_problem(turns, c, agents)
    if problem is None and terminal.proof is not None:
        problem = _proof_problem(terminal.proof, c)
    if problem is not None:
        return "FAIL", problem
    if not (math.isfinite(c.confidence) and c.confidence >= PASS_CONFIDENCE):
        return "CONDITIONAL", (
            f"consensus on {c.winner} with confidence {c.confidence:.2f}, "
            f"below {PASS_CONFIDENCE:.2f}"
        )
    return "PASS", (
        f"consensus on {c.winner}: agreement {c.agreement_ratio:.0%}, "
        f"confidence {c.confidence:.2f}, from completed, structured turns"
    )


def _no_consensus_reason(c: Consensus) -> str:
    if c.method == "none":
        return "no consensus: the protocol holds no vote (consensus: none)"
    if c.winner is None:
        return "no consensus: no single answer led the vote"
    return (
        f"no consensus: {c.winner} had {c.agreement_ratio:.0%} agreement, "
        f"below the threshold of {c.threshold:.0%}"
    )


def _answer_problem(turns: Sequence[TurnCompleted | TurnFailed], c: Consensus) -> str | None:
    """Why the winner's answer cannot be trusted (None: it came from a sound turn)."""
    if c.answer is None:
        return f"the consensus names {c.winner} but carries no answer"
    own = [
        t
        for t in turns
        if isinstance(t, TurnCompleted) and t.agent == c.winner and t.phase in _ANSWER_PHASES
    ]
    source = next((t for t in reversed(own) if t.content == c.answer), None)
    if source is None:
        return (
            f"the winning answer does not come from any completed turn of {c.winner} "
            "(an agent error or a placeholder)"
        )
    if not source.structured:
        return (
            f"the winning answer is an unstructured (unparsable) answer of {c.winner} "
            f"(turn {source.turn_id})"
        )
    return None


def _ballot_problem(
    turns: Sequence[TurnCompleted | TurnFailed], c: Consensus, agents: Sequence[str]
) -> str | None:
    """Why the ballots do not carry the consensus (None: they do).

    Every supporter needs a valid ballot (its choice may differ from the winner when the
    tally merged near-identical answers). A judge's ruling for the winner must be
    structured; without such a ruling, at least one supporter is needed.
    """
    ballots = _valid_ballots(turns, "vote", agents)
    ruling = _ruling_for_winner(turns, c) if c.method == "judge" else None
    if ruling is not None:
        if not ruling.structured:
            return (
                f"the judge's ruling for {c.winner} is an unstructured (unparsable) answer "
                f"of {ruling.agent}"
            )
    elif not c.supporters:
        return f"no ballot supports the winner {c.winner}"
    unsound = [s for s in c.supporters if s not in ballots]
    if unsound:
        return (
            f"support for {c.winner} from {', '.join(unsound)} is not a completed, "
            "structured ballot (an agent error or an unparsable answer)"
        )
    if c.quorum > 0 and len(ballots) < c.quorum:
        return f"only {len(ballots)} valid ballot(s), below the quorum of {c.quorum}"
    return None


def _ruling_for_winner(
    turns: Sequence[TurnCompleted | TurnFailed], c: Consensus
) -> TurnCompleted | None:
    """The last completed judge turn, when it chose the winner (else None: no ruling)."""
    rulings = [t for t in turns if t.phase == "judge" and isinstance(t, TurnCompleted)]
    last = rulings[-1] if rulings else None
    if last is None or last.vote is None or last.vote.choice != c.winner:
        return None
    return last


def _valid_ballots(
    turns: Sequence[TurnCompleted | TurnFailed], phase: str, agents: Sequence[str]
) -> dict[str, str]:
    """voter -> choice, from each agent's last outcome in ``phase``.

    Valid: a completed, structured turn with a vote for one of the debate's agents; a
    later failure in the same phase replaces an earlier success.
    """
    last = {t.agent: t for t in turns if t.phase == phase}
    return {
        voter: t.vote.choice
        for voter, t in last.items()
        if isinstance(t, TurnCompleted)
        and t.structured
        and t.vote is not None
        and t.vote.choice in agents
    }


def _proof_problem(proof: ConsensusProof, c: Consensus) -> str | None:
    if proof.checksum != proof_checksum(proof):
        return "the consensus proof's checksum does not match its content"
    if proof.winner != c.winner:
        return f"the consensus proof names {proof.winner}, the tally {c.winner}"
    return None
