"""Builders of debate event logs and receipts, shared by the receipt tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from aragora.contracts.messages import (
    DebateCompleted,
    DebateCreated,
    DebateEvent,
    PhaseStarted,
    TurnCompleted,
    TurnFailed,
)
from aragora.contracts.receipt import Receipt, build_receipt, proof_checksum
from aragora.contracts.values import (
    Consensus,
    ConsensusProof,
    Dissent,
    Protocol,
    TurnSpec,
    Vote,
)

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
