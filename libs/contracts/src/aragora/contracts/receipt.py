"""Decision receipts: a signed, self-verifying summary of how a debate ended.

A :class:`Receipt` is built from a finished debate's events (pure: no clock, no I/O; the
caller passes ``issued_at``). It states the outcome, a verdict (PASS / CONDITIONAL / FAIL)
with its reason, and a provenance chain: the SHA-256 of every turn's event and of the
terminal event, folded into one root. :func:`sign_receipt` signs it with Ed25519.

Serialized form: :func:`serialize_signed` writes canonical JSON (keys sorted, no
whitespace, UTF-8). :func:`verify_receipt` accepts exactly that form (plus at most one
trailing newline), so any changed byte either alters a signed value or breaks the
canonical form; either way the receipt fails verification.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

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
    Protocol,
    TerminalStatus,
)

RECEIPT_VERSION = "1"
ALGORITHM = "Ed25519"
PASS_CONFIDENCE = 0.7
SEED_BYTES = 32
_SIGNATURE_BYTES = 64
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
    return _dumps(msgspec.to_builtins(obj))


def _dumps(builtins: Any) -> bytes:
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


# --- signing and verifying -------------------------------------------------------------------


def public_key_of(private_key_seed: bytes) -> str:
    """Base64 of the raw 32-byte Ed25519 public key of ``private_key_seed``."""
    key = Ed25519PrivateKey.from_private_bytes(private_key_seed).public_key()
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def key_id_of(public_key: str) -> str:
    """The first 16 hex digits of SHA-256 over the raw public key (``public_key`` base64)."""
    return sha256_hex(base64.b64decode(public_key, validate=True))[:16]


def sign_receipt(receipt: Receipt, private_key_seed: bytes) -> SignedReceipt:
    """Sign ``canonical_json(receipt)`` with the Ed25519 key of the 32-byte seed."""
    if len(private_key_seed) != SEED_BYTES:
        raise ValueError(f"an Ed25519 seed is {SEED_BYTES} bytes, got {len(private_key_seed)}")
    key = Ed25519PrivateKey.from_private_bytes(private_key_seed)
    public_key = public_key_of(private_key_seed)
    return SignedReceipt(
        receipt=receipt,
        signature=base64.b64encode(key.sign(canonical_json(receipt))).decode(),
        public_key=public_key,
        key_id=key_id_of(public_key),
    )


def serialize_signed(signed: SignedReceipt) -> bytes:
    """The signed receipt as canonical JSON: the form :func:`verify_receipt` accepts."""
    return canonical_json(signed)


def verify_receipt(data: bytes, trusted_public_key: str | None = None) -> VerifyResult:
    """Check a serialized signed receipt; never raises on bad input.

    Checks: canonical JSON, the Ed25519 signature against the embedded key (which must be
    ``trusted_public_key`` when given), the key id, the provenance root, the proof checksum
    and the input hash.
    """
    problems: list[str] = []
    body = data[:-1] if data.endswith(b"\n") else data
    try:
        doc = json.loads(body)
        canonical = _dumps(doc)
    except (ValueError, RecursionError) as exc:
        return VerifyResult(ok=False, problems=[f"not a readable JSON receipt: {exc}"])
    if not isinstance(doc, dict):
        return VerifyResult(ok=False, problems=["not a signed receipt: expected a JSON object"])
    if canonical != body:
        problems.append(
            "the document is not in canonical form (altered or re-formatted; verify the "
            "receipt exactly as downloaded)"
        )
    problems += _signature_problems(doc, trusted_public_key)
    try:
        signed = msgspec.convert(doc, SignedReceipt)
    except msgspec.ValidationError as exc:
        problems.append(f"not a valid signed receipt: {exc}")
        return VerifyResult(ok=False, problems=problems)
    problems += _content_problems(signed, doc)
    return VerifyResult(ok=not problems, problems=problems, signed=signed)


def _strict_b64(value: Any, size: int) -> bytes | None:
    """Decode base64 of exactly ``size`` bytes, in its one canonical spelling; else None."""
    if not isinstance(value, str):
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != size or base64.b64encode(raw).decode() != value:
        return None
    return raw


def _signature_problems(doc: dict[str, Any], trusted_public_key: str | None) -> list[str]:
    problems: list[str] = []
    if doc.get("algorithm") != ALGORITHM:
        problems.append(f"unsupported signature algorithm {doc.get('algorithm')!r}")
    public_key = _strict_b64(doc.get("public_key"), SEED_BYTES)
    signature = _strict_b64(doc.get("signature"), _SIGNATURE_BYTES)
    if public_key is None:
        problems.append("the public key is not base64 of a 32-byte Ed25519 key")
    elif doc.get("key_id") != sha256_hex(public_key)[:16]:
        problems.append("the key id does not match the public key")
    if trusted_public_key is not None:
        trusted = _strict_b64(trusted_public_key.strip(), SEED_BYTES)
        if trusted is None:
            problems.append("the trusted public key is not base64 of a 32-byte Ed25519 key")
        elif trusted != public_key:
            problems.append("the receipt was signed by a different key than the trusted one")
    if signature is None:
        problems.append("the signature is not base64 of a 64-byte Ed25519 signature")
    if public_key is None or signature is None or "receipt" not in doc:
        if "receipt" not in doc:
            problems.append("the document holds no receipt")
        return problems
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, _dumps(doc["receipt"]))
    except (InvalidSignature, ValueError):
        problems.append("the signature does not match the receipt (it was altered)")
    return problems


def _content_problems(signed: SignedReceipt, doc: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    r = signed.receipt
    if canonical_json(r) != _dumps(doc["receipt"]):
        problems.append("the receipt holds fields or values outside the receipt schema")
    if r.version != RECEIPT_VERSION:
        problems.append(f"unsupported receipt version {r.version!r}")
    if provenance_root(r.provenance) != r.provenance_root:
        problems.append("the provenance root does not match the provenance entries")
    if r.proof is not None and proof_checksum(r.proof) != r.proof.checksum:
        problems.append("the consensus proof's checksum does not match its content")
    if input_hash(r.topic, r.agents, r.protocol, r.domain) != r.input_hash:
        problems.append("the input hash does not match the topic, agents, protocol and domain")
    if r.verdict != "FAIL" and r.status != "consensus":
        problems.append(f"verdict {r.verdict} contradicts status {r.status}")
    return problems


# --- rendering (every text from the debate is untrusted) -------------------------------------

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()#+-.!|~>"})


def _md(text: str) -> str:
    """Untrusted text as inert inline Markdown: HTML escaped, Markdown syntax escaped."""
    return html.escape(" ".join(text.split()), quote=True).translate(_MD_SPECIAL)


def _md_block(text: str) -> str:
    """Untrusted multi-line text as an inert Markdown block quote."""
    lines = [html.escape(line, quote=True).translate(_MD_SPECIAL) for line in text.splitlines()]
    return "\n".join(f"> {line}" if line.strip() else ">" for line in lines or [""])


def _summary(signed: SignedReceipt) -> list[tuple[str, str]]:
    """(label, value) rows shared by both renderings; values are raw (unescaped)."""
    r = signed.receipt
    rows = [
        ("Debate", r.debate_id),
        ("Topic", r.topic),
        ("Domain", r.domain),
        ("Agents", ", ".join(r.agents)),
        ("Status", r.status),
        ("Verdict", r.verdict),
        ("Reason", r.verdict_reason),
    ]
    c = r.consensus
    if c is not None:
        rows += [
            ("Winner", c.winner or "none"),
            ("Agreement", f"{c.agreement_ratio:.0%} (threshold {c.threshold:.0%})"),
            ("Confidence", f"{c.confidence:.2f}"),
            ("Supporters", ", ".join(c.supporters) or "none"),
            ("Dissenters", ", ".join(c.dissenters) or "none"),
        ]
    rows += [
        ("Protocol", f"{r.protocol.rounds} rounds, {r.protocol.consensus} consensus"),
        ("Input hash", r.input_hash),
        ("Provenance root", r.provenance_root),
        ("Issued at", r.issued_at),
        ("Signed by", f"{signed.algorithm} key {signed.key_id}"),
    ]
    return rows


def _failure_text(f: AgentFailure) -> str:
    return f"{f.agent}: {f.reason} (round {f.round}, {f.phase}, turn {f.turn_id})"


def render_markdown(signed: SignedReceipt) -> str:
    """The receipt as a Markdown document (debate text escaped, never live markup)."""
    r = signed.receipt
    out = ["# Decision receipt", ""]
    out += [f"- **{label}:** {_md(value)}" for label, value in _summary(signed)]
    if r.consensus is not None and r.consensus.answer is not None:
        out += ["", "## Answer", "", _md_block(r.consensus.answer)]
    if r.proof is not None and r.proof.dissent:
        out += ["", "## Dissent", ""]
        out += [f"- {_md(d.agent)}: {_md('; '.join(d.reasons) or '-')}" for d in r.proof.dissent]
    if r.failures:
        out += ["", "## Agent failures", ""]
        out += [f"- {_md(_failure_text(f))}" for f in r.failures]
    out += ["", "## Provenance", "", "| seq | type | agent | sha256 |", "|---|---|---|---|"]
    out += [
        f"| {e.seq} | {_md(e.type)} | {_md(e.agent or '-')} | `{_md(e.sha256)}` |"
        for e in r.provenance
    ]
    out += [
        "",
        "## Signature",
        "",
        f"- **Algorithm:** {_md(signed.algorithm)}",
        f"- **Public key:** {_md(signed.public_key)}",
        f"- **Signature:** {_md(signed.signature)}",
        "",
        "Verify the JSON form with `aragora receipt verify FILE`.",
        "",
    ]
    return "\n".join(out)


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "th{text-align:left;padding-right:1rem;vertical-align:top}td{word-break:break-word}"
    "blockquote{white-space:pre-wrap;border-left:4px solid #ccc;margin:0;padding:.5rem 1rem}"
    ".PASS{color:#176117}.CONDITIONAL{color:#8a5a00}.FAIL{color:#a11}code{font-size:.85em}"
)


def render_html(signed: SignedReceipt) -> str:
    """The receipt as a complete, script-free HTML page (all debate text escaped)."""

    def e(text: object) -> str:
        return html.escape(str(text), quote=True)

    r = signed.receipt
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _summary(signed))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>Decision receipt {e(r.debate_id)}</title><style>{_CSS}</style></head><body>",
        f'<h1>Decision receipt: <span class="{e(r.verdict)}">{e(r.verdict)}</span></h1>',
        f"<table>{rows}</table>",
    ]
    if r.consensus is not None and r.consensus.answer is not None:
        parts.append(f"<h2>Answer</h2><blockquote>{e(r.consensus.answer)}</blockquote>")
    if r.proof is not None and r.proof.dissent:
        items = "".join(
            f"<li>{e(d.agent)}: {e('; '.join(d.reasons) or '-')}</li>" for d in r.proof.dissent
        )
        parts.append(f"<h2>Dissent</h2><ul>{items}</ul>")
    if r.failures:
        items = "".join(f"<li>{e(_failure_text(f))}</li>" for f in r.failures)
        parts.append(f"<h2>Agent failures</h2><ul>{items}</ul>")
    entries = "".join(
        f"<tr><td>{p.seq}</td><td>{e(p.type)}</td><td>{e(p.agent or '-')}</td>"
        f"<td><code>{e(p.sha256)}</code></td></tr>"
        for p in r.provenance
    )
    parts += [
        "<h2>Provenance</h2><table><tr><th>seq</th><th>type</th><th>agent</th>"
        f"<th>sha256</th></tr>{entries}</table>",
        f"<h2>Signature</h2><p>{e(signed.algorithm)} key <code>{e(signed.key_id)}</code></p>",
        f"<p>Public key: <code>{e(signed.public_key)}</code></p>",
        f"<p>Signature: <code>{e(signed.signature)}</code></p>",
        "<p>Verify the JSON form with <code>aragora receipt verify FILE</code>.</p>",
        "</body></html>",
        "",
    ]
    return "\n".join(parts)
